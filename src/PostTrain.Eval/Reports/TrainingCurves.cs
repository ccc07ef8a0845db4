// Reads a training run's metrics.jsonl (MetricsLogger: one JSON object per line with "step" and named values) into
// series for the report: every numeric key whose name contains loss, reward, kl or len (case-insensitive), by step.
// Strings such as "NaN" are skipped; a malformed line is an error naming the file and line.
using System.Text.Json;

namespace PostTrain.Eval.Reports;

public sealed record CurveSeries(string Name, double[] Steps, double[] Values);

public static class TrainingCurves
{
    private static readonly string[] Wanted = ["loss", "reward", "kl", "len"];

    /// <summary>A run folder (its metrics.jsonl) or the file itself.</summary>
    public static IReadOnlyList<CurveSeries> Read(string runDirOrFile)
    {
        var path = Directory.Exists(runDirOrFile) ? Path.Combine(runDirOrFile, "metrics.jsonl") : runDirOrFile;
        if (!File.Exists(path)) throw new EvalConfigException($"metrics file '{path}' not found (give a run folder or its metrics.jsonl)");
        var series = new SortedDictionary<string, List<(double Step, double Value)>>(StringComparer.Ordinal);
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (text.Trim().Length == 0) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(text); }
            catch (JsonException e) { throw new EvalConfigException($"{path}: line {line}: not JSON ({e.Message})"); }
            using (doc)
            {
                if (!doc.RootElement.TryGetProperty("step", out var stepEl) || stepEl.ValueKind != JsonValueKind.Number)
                    throw new EvalConfigException($"{path}: line {line}: no numeric 'step'");
                double step = stepEl.GetDouble();
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (p.Value.ValueKind != JsonValueKind.Number || !Wanted.Any(w => p.Name.Contains(w, StringComparison.OrdinalIgnoreCase))) continue;
                    if (!series.TryGetValue(p.Name, out var list)) series[p.Name] = list = [];
                    list.Add((step, p.Value.GetDouble()));
                }
            }
        }
        return series.Select(kv => new CurveSeries(kv.Key, kv.Value.Select(x => x.Step).ToArray(), kv.Value.Select(x => x.Value).ToArray())).ToList();
    }
}
