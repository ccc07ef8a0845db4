// The pipeline's one-page summary (pipeline.md + pipeline.json in its output folder): per stage its recipe, status,
// wall time and headline numbers read from what the stage wrote: the first and last value of every eval metric in
// its metrics.jsonl (SFT's eval_loss, GRPO's held-out eval/..., the reward model's eval/...), the numbers of a
// distillation's stats.json, and an eval stage's results.json (accuracy with its CI per model and task, and each
// model against the first one with McNemar's p).
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PostTrain.Eval.Recipe;
using PostTrain.Training.Infra;

namespace PostTrain.Pipeline;

public sealed class PipelineSummary(string outputDir)
{
    public const string MarkdownFileName = "pipeline.md", JsonFileName = "pipeline.json";

    public sealed record StageRow(string Stage, string Recipe, string Dir, double Seconds, string Status,
        IReadOnlyList<(string Name, string Value)> Numbers, IReadOnlyList<string> Tables);

    private readonly List<StageRow> _rows = [];
    public IReadOnlyList<StageRow> Rows => _rows;

    public void Add(string stage, string recipe, string dir, double seconds, bool skipped, bool failed = false)
    {
        var (numbers, tables) = Headline(dir);
        _rows.RemoveAll(r => r.Stage == stage);
        _rows.Add(new StageRow(stage, recipe, dir, seconds, failed ? "failed" : skipped ? "done (skipped now)" : "done", numbers, tables));
    }

    public void Write()
    {
        Directory.CreateDirectory(outputDir);
        AtomicFile.WriteAllText(Path.Combine(outputDir, MarkdownFileName), Markdown());
        var json = new JsonArray(_rows.Select(r => (JsonNode)new JsonObject
        {
            ["stage"] = r.Stage, ["recipe"] = r.Recipe, ["dir"] = r.Dir, ["seconds"] = Math.Round(r.Seconds, 1), ["status"] = r.Status,
            ["numbers"] = new JsonObject(r.Numbers.Select(n => KeyValuePair.Create(n.Name, (JsonNode?)n.Value))),
        }).ToArray());
        AtomicFile.WriteAllText(Path.Combine(outputDir, JsonFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public string Markdown()
    {
        var sb = new StringBuilder();
        sb.Append("# Pipeline summary\n\n| stage | recipe | status | time | numbers |\n| --- | --- | --- | --- | --- |\n");
        foreach (var r in _rows)
            sb.Append($"| {r.Stage} | {r.Recipe} | {r.Status} | {PipelineRecipe.Duration(r.Seconds)} | " +
                $"{string.Join("<br>", r.Numbers.Select(n => $"{n.Name}: {n.Value}"))} |\n");
        sb.Append($"\ntotal time: {PipelineRecipe.Duration(_rows.Sum(r => r.Seconds))}\n");
        foreach (var r in _rows.Where(r => r.Tables.Count > 0))
        {
            sb.Append($"\n## {r.Stage}\n\n");
            foreach (var t in r.Tables) sb.Append(t).Append('\n');
            if (File.Exists(Path.Combine(r.Dir, "report.html"))) sb.Append($"Full report: {Path.Combine(r.Dir, "report.html")}\n");
        }
        return sb.ToString();
    }

    private static (List<(string, string)> Numbers, List<string> Tables) Headline(string dir)
    {
        var numbers = new List<(string, string)>();
        var tables = new List<string>();
        var metrics = Path.Combine(dir, MetricsLogger.JsonlFileName);
        if (File.Exists(metrics))
        {
            var first = new Dictionary<string, double>(StringComparer.Ordinal);
            var last = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var line in File.ReadLines(metrics))
            {
                JsonObject? row;
                try { row = JsonNode.Parse(line) as JsonObject; }
                catch (JsonException) { continue; }   // a torn last line of a killed run
                if (row is null) continue;
                foreach (var (key, value) in row)
                    if (key.StartsWith("eval", StringComparison.Ordinal) && !Bookkeeping(key) && value is JsonValue v && v.TryGetValue<double>(out var d))
                    {
                        first.TryAdd(key, d);
                        last[key] = d;
                    }
            }
            foreach (var (key, end) in last)
                numbers.Add((key, first[key] == end ? Format(end) : $"{Format(first[key])} → {Format(end)}"));
        }
        var stats = Path.Combine(dir, "stats.json");
        if (File.Exists(stats) && TryParse(stats) is JsonObject s)
            foreach (var (key, value) in s)
                if (!Bookkeeping(key) && value is JsonValue v && v.TryGetValue<double>(out var d)) numbers.Add((key, Format(d)));
        var results = Path.Combine(dir, EvalResultsFile.FileName);
        if (File.Exists(results) && EvalResultsFile.Read(results) is { } r)
        {
            foreach (var m in r.Metrics) numbers.Add(($"{m.Model} {m.Task} accuracy", $"{m.Accuracy:F3} [{m.CiLower:F3}, {m.CiUpper:F3}]"));
            tables.Add(EvalResultsFile.MarkdownTable(r));
        }
        return (numbers, tables);
    }

    /// <summary>Counters that say how a number was computed rather than what it is (kept in the stage's own files).</summary>
    private static bool Bookkeeping(string key) =>
        key.EndsWith("/nulls", StringComparison.Ordinal) || key.EndsWith("/errors", StringComparison.Ordinal)
        || key.EndsWith("/timeouts", StringComparison.Ordinal) || key.EndsWith("/applicable", StringComparison.Ordinal)
        || key.EndsWith("/answered", StringComparison.Ordinal) || key.EndsWith("/std", StringComparison.Ordinal)
        || key.EndsWith("_tokens", StringComparison.Ordinal) || key is "seconds" or "shards" or "samples_per_problem" or "dataset_rows";

    private static JsonNode? TryParse(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException) { return null; }
    }

    private static string Format(double d) =>
        Math.Abs(d) >= 1000 || d == Math.Round(d) ? d.ToString("0.##", CultureInfo.InvariantCulture) : d.ToString("0.####", CultureInfo.InvariantCulture);
}
