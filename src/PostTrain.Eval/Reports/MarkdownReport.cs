// report.md: the settings, the summary, comparison and per-category tables as GitHub Markdown (no plots).
using System.Text;
using PostTrain.Eval.Runner;

namespace PostTrain.Eval.Reports;

public static class MarkdownReport
{
    public static string Render(EvalResult r, EvalSettings settings)
    {
        var sb = new StringBuilder();
        sb.Append("# Evaluation report\n\n");
        sb.Append($"Models: {string.Join(", ", r.Models)}. Tasks: {string.Join(", ", r.Tasks.Select(t => t.Name))}. ");
        sb.Append($"Greedy accuracy; {(settings.Samples > 1 ? $"{settings.Samples} samples per problem at temperature {settings.Temperature} (top-p {settings.TopP}) for pass@k and maj@k; " : "")}");
        sb.Append($"max {settings.MaxNewTokens} new tokens; bootstrap: {settings.BootstrapResamples} resamples, seed {settings.BootstrapSeed}");
        if (settings.ChatTemplates is { Count: > 0 } templates)
            sb.Append("; chat templates: " + string.Join(", ", templates.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key} {t.Value}")) + " (other models: auto)");
        sb.Append(".\n\n");
        Write(sb, ReportTables.Summary(r));
        if (r.Comparisons.Count > 0) Write(sb, ReportTables.Comparisons(r));
        foreach (var t in r.Tasks)
            if (ReportTables.Categories(r, t.Name) is Table cat) Write(sb, cat);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, Table t)
    {
        sb.Append("## ").Append(t.Title).Append("\n\n");
        sb.Append("| ").Append(string.Join(" | ", t.Header.Select(Cell))).Append(" |\n");
        sb.Append('|').Append(string.Concat(t.Header.Select(_ => " --- |"))).Append('\n');
        foreach (var row in t.Rows) sb.Append("| ").Append(string.Join(" | ", row.Select(Cell))).Append(" |\n");
        sb.Append('\n');
    }

    private static string Cell(string s) => s.Replace("|", "\\|").Replace("\n", " ");
}
