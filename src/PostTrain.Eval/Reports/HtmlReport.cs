// report.html: one self-contained page (inline CSS, plots as inline SVG, no scripts, no external links), so it opens
// offline and can be mailed around: settings, summary and comparison tables, then per task its category table and
// plots (accuracy per model, pass@k, length histogram), training curves when a metrics.jsonl was given, and a
// browsable sample of failures (<details> per sample: prompt, completion, extracted answer, checker reason).
using System.Net;
using System.Text;
using PostTrain.Eval.Metrics;
using PostTrain.Eval.Runner;

namespace PostTrain.Eval.Reports;

public static class HtmlReport
{
    private const string Css = """
        body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1200px}
        h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
        table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
        th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f2f4f7}
        tr:nth-child(even) td{background:#fafafa}
        .plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0;border:1px solid #eee}
        details{border:1px solid #e4e4e4;border-radius:4px;margin:4px 0;padding:4px 8px}
        summary{cursor:pointer}pre{white-space:pre-wrap;background:#f7f7f7;padding:6px;margin:4px 0;font-size:.85em}
        .muted{color:#666}
        """;

    public static string Render(EvalResult r, EvalSettings settings, IReadOnlyList<CurveSeries>? curves)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>PostTrain evaluation report</title>");
        sb.Append("<style>").Append(Css).Append("</style></head><body>\n<h1>Evaluation report</h1>\n");
        sb.Append("<p class=\"muted\">").Append(E(MarkdownReport.Render(r, settings).Split('\n')[2])).Append("</p>\n");
        Table(sb, ReportTables.Summary(r));
        if (r.Comparisons.Count > 0) Table(sb, ReportTables.Comparisons(r));
        foreach (var task in r.Tasks)
        {
            var ms = r.Metrics.Where(m => m.Task == task.Name).ToList();
            sb.Append("<h2>Task: ").Append(E(task.Name)).Append("</h2>\n<p class=\"muted\">dataset ").Append(E(task.Dataset))
              .Append(", checker ").Append(E(task.Checker)).Append("</p>\n");
            if (ReportTables.Categories(r, task.Name) is Table cat) Table(sb, cat);
            sb.Append("<div class=\"plots\">");
            Figure(sb, Plots.Accuracy(task.Name, ms));
            if (ms.Any(m => m.PassAtK.Count > 0)) Figure(sb, Plots.PassAtK(task.Name, ms));
            Figure(sb, Plots.Lengths(task.Name, ms.Select(m => (m.Model, r.Samples
                .Where(s => s.Model == m.Model && s.Task == task.Name && s.Mode == EvalSample.Greedy).Select(s => s.CompletionTokens).ToArray())).ToList()));
            sb.Append("</div>\n");
            Failures(sb, r, task.Name, settings.FailuresShown);
        }
        if (curves is { Count: > 0 })
        {
            sb.Append("<h2>Training curves</h2>\n<div class=\"plots\">");
            foreach (var c in curves) Figure(sb, Plots.Curve(c));
            sb.Append("</div>\n");
        }
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    private static void Failures(StringBuilder sb, EvalResult r, string task, int shown)
    {
        foreach (var model in r.Models)
        {
            var failed = r.Samples.Where(s => s.Model == model && s.Task == task && s.Mode == EvalSample.Greedy && !s.Correct).OrderBy(s => s.Problem).ToList();
            sb.Append("<h3>Failures: ").Append(E(model)).Append(" on ").Append(E(task)).Append(" <span class=\"muted\">(")
              .Append(failed.Count).Append(" greedy failures, first ").Append(System.Math.Min(shown, failed.Count)).Append(" shown)</span></h3>\n");
            foreach (var s in failed.Take(shown))
            {
                sb.Append("<details><summary>problem ").Append(s.Problem);
                if (s.Category is not null) sb.Append(" [").Append(E(s.Category)).Append(']');
                sb.Append(": ").Append(E(s.Reason ?? "wrong")).Append("</summary>");
                sb.Append("<b>prompt</b><pre>").Append(E(s.Prompt)).Append("</pre><b>completion</b> <span class=\"muted\">(")
                  .Append(s.CompletionTokens).Append(" tokens, ").Append(E(s.FinishReason)).Append(")</span><pre>").Append(E(s.Completion))
                  .Append("</pre><b>answer</b> ").Append(E(s.Answer ?? "(none)")).Append(", reward ").Append(s.Reward is double v ? ReportTables.F(v) : "null")
                  .Append("</details>\n");
            }
        }
    }

    private static void Table(StringBuilder sb, Table t)
    {
        sb.Append("<h2>").Append(E(t.Title)).Append("</h2>\n<table><thead><tr>");
        foreach (var h in t.Header) sb.Append("<th>").Append(E(h)).Append("</th>");
        sb.Append("</tr></thead><tbody>\n");
        foreach (var row in t.Rows)
        {
            sb.Append("<tr>");
            foreach (var c in row) sb.Append("<td>").Append(E(c)).Append("</td>");
            sb.Append("</tr>\n");
        }
        sb.Append("</tbody></table>\n");
    }

    private static void Figure(StringBuilder sb, string svg) => sb.Append("<figure>").Append(svg).Append("</figure>");

    /// <summary>HTML-escapes text; characters XML cannot hold (control characters from random models) become U+FFFD.</summary>
    private static string E(string s) => WebUtility.HtmlEncode(new string(s.Select(c => c < ' ' && c is not ('\n' or '\r' or '\t') ? '\uFFFD' : c).ToArray()));
}
