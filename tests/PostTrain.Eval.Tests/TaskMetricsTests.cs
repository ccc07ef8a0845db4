using PostTrain.Eval.Metrics;
using PostTrain.Eval.Runner;

namespace PostTrain.Eval.Tests;

public sealed class TaskMetricsTests
{
    internal static EvalSample S(int problem, int sample, bool correct, string mode = EvalSample.Greedy, string? answer = null,
        string? category = null, int tokens = 10, string finish = "stop") => new()
    {
        Model = "m", Task = "t", Mode = mode, Problem = problem, Sample = sample, Category = category, Prompt = $"p{problem}",
        Completion = $"c{problem}.{sample}", Answer = answer, Reward = correct ? 1 : 0, Correct = correct, PromptTokens = 5,
        CompletionTokens = tokens, FinishReason = finish,
    };

    [Fact]
    public void ComputesAccuracyPassAtKMajAtKLengthsAndCategories()
    {
        var greedy = new[]
        {
            S(0, 0, true, category: "add", tokens: 10),
            S(1, 0, false, category: "add", tokens: 20, finish: "length"),
            S(2, 0, true, category: "mul", tokens: 30),
            S(3, 0, false, category: "mul", tokens: 40, finish: "length"),
        };
        // 3 samples each; correct counts 3, 1, 0, 2
        IReadOnlyList<EvalSample> P(int p, params (string? Ans, bool Ok)[] xs) =>
            xs.Select((x, i) => S(p, i, x.Ok, EvalSample.Sampled, x.Ans)).ToList();
        var sampled = new[]
        {
            P(0, ("1", true), ("1", true), ("1", true)),
            P(1, ("2", false), ("5", true), ("2", false)),   // majority "2" wrong
            P(2, (null, false), ("8", false), (null, false)), // majority "8" wrong
            P(3, ("6", true), ("7", false), ("6", true)),    // majority "6" right
        };
        var m = TaskMetrics.Compute("m", "t", greedy, sampled, hasAnswers: true, bootstrapSeed: 1, resamples: 500);
        Assert.Equal(0.5, m.Accuracy);
        Assert.Equal(3, m.SamplesPerProblem);
        // pass@1 = mean(c/n) = (3 + 1 + 0 + 2) / 12 = 0.5
        Assert.Equal(0.5, m.PassAtK[1], 12);
        // pass@2: 1, 1 - C(2,2)/C(3,2) = 2/3, 0, 1 -> (1 + 2/3 + 0 + 1) / 4
        Assert.Equal((1 + 2.0 / 3 + 0 + 1) / 4, m.PassAtK[2], 12);
        Assert.Equal(0.75, m.PassAtK[3], 12);
        Assert.Equal(0.5, m.MajAtK);
        Assert.Equal(25, m.MeanCompletionTokens);
        Assert.Equal(0.5, m.TruncationRate);
        Assert.Equal(["add", "mul"], m.Categories.Select(c => c.Category));
        Assert.All(m.Categories, c => Assert.Equal((2, 0.5), (c.Problems, c.Accuracy)));
        Assert.Null(TaskMetrics.Compute("m", "t", greedy, sampled, hasAnswers: false, 1, 500).MajAtK);
        var greedyOnly = TaskMetrics.Compute("m", "t", greedy, greedy.Select(_ => (IReadOnlyList<EvalSample>)[]).ToList(), true, 1, 500);
        Assert.Empty(greedyOnly.PassAtK);
        Assert.Null(greedyOnly.MajAtK);
    }
}
