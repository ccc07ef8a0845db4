// The numbers a report shows for one model on one task, computed from its samples (pure functions of them).
//   accuracy: share of problems whose greedy sample is correct, with a seeded 95% percentile-bootstrap interval;
//   pass@k: mean over problems of the unbiased estimator on the sampled samples (n = samples per problem);
//   maj@k: share of problems whose majority answer (MajorityVote) is correct, k = samples per problem;
//   mean completion tokens and truncation rate (finish reason "length"): over greedy samples;
//   categories: greedy accuracy per category value (problems without a category are left out).
using PostTrain.Eval.Runner;

namespace PostTrain.Eval.Metrics;

public sealed record CategoryMetrics(string Category, int Problems, double Accuracy, Interval AccuracyCi);

public sealed record TaskMetrics(
    string Model,
    string Task,
    int Problems,
    double Accuracy,
    Interval AccuracyCi,
    double MeanReward,
    int SamplesPerProblem,
    IReadOnlyDictionary<int, double> PassAtK,
    double? MajAtK,
    double MeanCompletionTokens,
    double TruncationRate,
    int CheckerFailures,
    IReadOnlyList<CategoryMetrics> Categories)
{
    /// <param name="greedy">One greedy sample per problem, in problem order.</param>
    /// <param name="sampled">Per problem, its sampled samples in sample order (empty lists when none).</param>
    /// <param name="hasAnswers">Whether the task extracts answers (else maj@k is null).</param>
    public static TaskMetrics Compute(string model, string task, IReadOnlyList<EvalSample> greedy,
        IReadOnlyList<IReadOnlyList<EvalSample>> sampled, bool hasAnswers, ulong bootstrapSeed, int resamples)
    {
        if (greedy.Count == 0) throw new ArgumentException($"{model} / {task}: no greedy samples to compute metrics from");
        var correct = greedy.Select(s => s.Correct ? 1.0 : 0.0).ToArray();
        var ci = Bootstrap.MeanInterval(correct, bootstrapSeed, resamples);
        int n = sampled.Count > 0 ? sampled.Min(x => x.Count) : 0;
        var passAtK = new SortedDictionary<int, double>();
        double? maj = null;
        if (n > 0)
        {
            foreach (int k in Metrics.PassAtK.ReportedKs(n))
                passAtK[k] = sampled.Average(x => Metrics.PassAtK.Estimate(n, x.Take(n).Count(s => s.Correct), k));
            if (hasAnswers)
                maj = sampled.Average(x => MajorityVote.Decide(x.Take(n).Select(s => new MajorityVote.Vote(s.Answer, s.Correct)).ToList()).Correct ? 1.0 : 0.0);
        }
        var categories = greedy.Where(s => s.Category is not null).GroupBy(s => s.Category!, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g =>
            {
                var c = g.Select(s => s.Correct ? 1.0 : 0.0).ToArray();
                return new CategoryMetrics(g.Key, c.Length, c.Average(), Bootstrap.MeanInterval(c, bootstrapSeed, resamples));
            }).ToList();
        int failures = greedy.Concat(sampled.SelectMany(x => x)).Count(s => s.Reason?.StartsWith("checker failed", StringComparison.Ordinal) == true);
        return new TaskMetrics(model, task, greedy.Count, correct.Average(), ci, greedy.Average(s => s.Reward ?? 0), n, passAtK, maj,
            greedy.Average(s => (double)s.CompletionTokens), greedy.Average(s => s.FinishReason == "length" ? 1.0 : 0.0), failures, categories);
    }
}
