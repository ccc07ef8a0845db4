// What an eval returns: metrics per (model, task), comparisons of every later model against the first (baseline) on
// each task, every sample of this eval's models, tasks and problems, and where the reports were written.
using PostTrain.Eval.Metrics;
using PostTrain.Eval.Reports;
using PostTrain.Eval.Tasks;

namespace PostTrain.Eval.Runner;

public sealed record EvalResult(
    IReadOnlyList<string> Models,
    IReadOnlyList<EvalTask> Tasks,
    IReadOnlyList<TaskMetrics> Metrics,
    IReadOnlyList<Comparison> Comparisons,
    IReadOnlyList<EvalSample> Samples,
    ReportPaths? Reports = null)
{
    public TaskMetrics Get(string model, string task) =>
        Metrics.FirstOrDefault(m => m.Model == model && m.Task == task) ?? throw new KeyNotFoundException($"no metrics for model '{model}' on task '{task}'");

    /// <summary>Metrics from the samples of the given models on the given tasks' problems (others in the log are ignored).</summary>
    public static EvalResult Compute(IReadOnlyList<string> models, IReadOnlyList<(EvalTask Task, IReadOnlyList<EvalProblem> Problems)> tasks,
        IReadOnlyList<EvalSample> all, EvalSettings settings)
    {
        var index = all.ToDictionary(s => s.Key);
        var metrics = new List<TaskMetrics>();
        var comparisons = new List<Comparison>();
        var kept = new List<EvalSample>();
        foreach (var (task, problems) in tasks)
        {
            var greedyByModel = new Dictionary<string, List<EvalSample>>();
            foreach (var model in models)
            {
                EvalSample Need((string, string, string, int, int) key) => index.TryGetValue(key, out var s) ? s
                    : throw new InvalidOperationException($"sample {key} missing after the eval ran");
                var greedy = problems.Select(p => Need((model, task.Name, EvalSample.Greedy, p.Index, 0))).ToList();
                var sampled = problems.Select(p => (IReadOnlyList<EvalSample>)Enumerable.Range(0, settings.Samples > 1 ? settings.Samples : 0)
                    .Select(i => Need((model, task.Name, EvalSample.Sampled, p.Index, i))).ToList()).ToList();
                greedyByModel[model] = greedy;
                kept.AddRange(greedy);
                kept.AddRange(sampled.SelectMany(x => x));
                metrics.Add(TaskMetrics.Compute(model, task.Name, greedy, sampled, task.Answers != "none", settings.BootstrapSeed, settings.BootstrapResamples));
            }
            foreach (var other in models.Skip(1))
                comparisons.Add(Comparison.Compute(task.Name, models[0], other, greedyByModel[models[0]].Select(s => s.Correct).ToList(),
                    greedyByModel[other].Select(s => s.Correct).ToList(), settings.BootstrapSeed, settings.BootstrapResamples));
        }
        return new EvalResult(models, tasks.Select(t => t.Task).ToList(), metrics, comparisons, kept);
    }
}
