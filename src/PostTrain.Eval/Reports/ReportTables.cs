// The report's tables as plain rows of text (header first), shared by the HTML and Markdown writers: the summary
// (one row per model and task), comparisons against the baseline, and the per-category breakdown of a task.
using System.Globalization;
using PostTrain.Eval.Metrics;
using PostTrain.Eval.Runner;

namespace PostTrain.Eval.Reports;

public sealed record Table(string Title, IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows);

public static class ReportTables
{
    public static Table Summary(EvalResult r)
    {
        var ks = r.Metrics.SelectMany(m => m.PassAtK.Keys).Distinct().Order().ToList();
        bool maj = r.Metrics.Any(m => m.MajAtK is not null);
        var header = new List<string> { "model", "task", "problems", "accuracy", "95% CI", "mean reward" };
        header.AddRange(ks.Select(k => $"pass@{k}"));
        if (maj) header.Add($"maj@{r.Metrics.Max(m => m.SamplesPerProblem)}");
        header.AddRange(["mean tokens", "truncated", "checker failures"]);
        var rows = r.Metrics.Select(m =>
        {
            var row = new List<string> { m.Model, m.Task, I(m.Problems), F(m.Accuracy), m.AccuracyCi.ToString(), F(m.MeanReward) };
            row.AddRange(ks.Select(k => m.PassAtK.TryGetValue(k, out var v) ? F(v) : "-"));
            if (maj) row.Add(m.MajAtK is double v ? F(v) : "-");
            row.AddRange([m.MeanCompletionTokens.ToString("F1", CultureInfo.InvariantCulture), Pct(m.TruncationRate), I(m.CheckerFailures)]);
            return (IReadOnlyList<string>)row;
        }).ToList();
        return new Table("Summary", header, rows);
    }

    public static Table Comparisons(EvalResult r) => new("Comparison with the baseline (first model)",
        ["task", "baseline (A)", "model (B)", "problems", "acc A", "acc B", "B - A", "95% CI (paired bootstrap)", "only A right", "only B right", "McNemar p", "significant (p < 0.05)"],
        r.Comparisons.Select(c => (IReadOnlyList<string>)[c.Task, c.ModelA, c.ModelB, I(c.Problems), F(c.AccuracyA), F(c.AccuracyB),
            c.Difference.ToString("+0.000;-0.000;0.000", CultureInfo.InvariantCulture), c.DifferenceCi.ToString(), I(c.OnlyA), I(c.OnlyB),
            c.PValue.ToString("G4", CultureInfo.InvariantCulture), c.Significant ? "yes" : "no"]).ToList());

    /// <summary>Accuracy per category for every model on the task; null when the task has no categories.</summary>
    public static Table? Categories(EvalResult r, string task)
    {
        var ms = r.Metrics.Where(m => m.Task == task).ToList();
        var cats = ms.SelectMany(m => m.Categories.Select(c => c.Category)).Distinct().Order(StringComparer.Ordinal).ToList();
        if (cats.Count == 0) return null;
        return new Table($"{task}: accuracy per category", ["model", .. cats.Select(c => $"{c} (n={ms[0].Categories.FirstOrDefault(x => x.Category == c)?.Problems ?? 0})")],
            ms.Select(m => (IReadOnlyList<string>)[m.Model, .. cats.Select(c => m.Categories.FirstOrDefault(x => x.Category == c) is CategoryMetrics cm
                ? $"{F(cm.Accuracy)} {cm.AccuracyCi}" : "-")]).ToList());
    }

    public static string F(double v) => double.IsNaN(v) ? "-" : v.ToString("F3", CultureInfo.InvariantCulture);
    public static string Pct(double v) => (100 * v).ToString("F1", CultureInfo.InvariantCulture) + "%";
    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
}
