// results.json beside an eval's reports: the headline numbers in a form other tools read (the pipeline's summary,
// scripts): per model and task the greedy accuracy with its 95% CI, pass@k, maj@k, and the paired comparisons,
// both of every model against the first one and of each model against the one before it (stage-to-stage gains when
// the models are a pipeline's checkpoints in order).
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using PostTrain.Eval.Metrics;
using PostTrain.Eval.Runner;
using PostTrain.Training.Infra;

namespace PostTrain.Eval.Recipe;

public sealed record EvalResultsFile(
    [property: JsonPropertyName("metrics")] IReadOnlyList<EvalResultsFile.ModelTask> Metrics,
    [property: JsonPropertyName("comparisons")] IReadOnlyList<EvalResultsFile.Pair> Comparisons)
{
    public const string FileName = "results.json";

    public sealed record ModelTask(
        [property: JsonPropertyName("model")] string Model,
        [property: JsonPropertyName("task")] string Task,
        [property: JsonPropertyName("problems")] int Problems,
        [property: JsonPropertyName("accuracy")] double Accuracy,
        [property: JsonPropertyName("ci_lower")] double CiLower,
        [property: JsonPropertyName("ci_upper")] double CiUpper,
        [property: JsonPropertyName("pass_at_k")] IReadOnlyDictionary<string, double> PassAtK,
        [property: JsonPropertyName("maj_at_k")] double? MajAtK);

    public sealed record Pair(
        [property: JsonPropertyName("task")] string Task,
        [property: JsonPropertyName("from")] string From,
        [property: JsonPropertyName("to")] string To,
        [property: JsonPropertyName("kind")] string Kind,
        [property: JsonPropertyName("difference")] double Difference,
        [property: JsonPropertyName("ci_lower")] double CiLower,
        [property: JsonPropertyName("ci_upper")] double CiUpper,
        [property: JsonPropertyName("p_value")] double PValue);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static EvalResultsFile From(EvalResult result, EvalSettings settings)
    {
        var metrics = result.Metrics.Select(m => new ModelTask(m.Model, m.Task, m.Problems, m.Accuracy, m.AccuracyCi.Lower, m.AccuracyCi.Upper,
            m.PassAtK.ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture), kv => kv.Value), m.MajAtK)).ToList();
        var pairs = result.Comparisons.Select(c => ToPair(c, "vs_first")).ToList();
        // each model against the one before it (the first pair equals the vs_first one, so it is not repeated)
        foreach (var task in result.Tasks)
            for (int i = 2; i < result.Models.Count; i++)
            {
                bool[] Greedy(string model) => result.Samples.Where(s => s.Model == model && s.Task == task.Name && s.Mode == EvalSample.Greedy)
                    .OrderBy(s => s.Problem).Select(s => s.Correct).ToArray();
                var c = Comparison.Compute(task.Name, result.Models[i - 1], result.Models[i], Greedy(result.Models[i - 1]), Greedy(result.Models[i]),
                    settings.BootstrapSeed, settings.BootstrapResamples);
                pairs.Add(ToPair(c, "vs_previous"));
            }
        return new EvalResultsFile(metrics, pairs);
    }

    private static Pair ToPair(Comparison c, string kind) =>
        new(c.Task, c.ModelA, c.ModelB, kind, c.Difference, c.DifferenceCi.Lower, c.DifferenceCi.Upper, c.PValue);

    public void Write(string dir) => AtomicFile.WriteAllText(Path.Combine(dir, FileName), JsonSerializer.Serialize(this, Json));

    public static EvalResultsFile? Read(string path)
    {
        try { return JsonSerializer.Deserialize<EvalResultsFile>(File.ReadAllText(path), Json); }
        catch (JsonException) { return null; }
    }

    /// <summary>Accuracy per model and task, then the comparisons, as Markdown.</summary>
    public static string MarkdownTable(EvalResultsFile r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("| model | task | problems | greedy accuracy [95% CI] | pass@k | maj@k |\n| --- | --- | --- | --- | --- | --- |\n");
        foreach (var m in r.Metrics)
            sb.Append(inv, $"| {m.Model} | {m.Task} | {m.Problems} | {m.Accuracy:F3} [{m.CiLower:F3}, {m.CiUpper:F3}] | ")
              .Append(string.Join(", ", m.PassAtK.Select(kv => string.Create(inv, $"@{kv.Key} {kv.Value:F3}"))))
              .Append(inv, $" | {(m.MajAtK is double mj ? mj.ToString("F3", inv) : "")} |\n");
        if (r.Comparisons.Count > 0)
        {
            sb.Append("\n| task | from | to | difference [95% CI] | McNemar p |\n| --- | --- | --- | --- | --- |\n");
            foreach (var c in r.Comparisons)
                sb.Append(inv, $"| {c.Task} | {c.From} | {c.To} | {c.Difference:+0.000;-0.000;0.000} [{c.CiLower:+0.000;-0.000;0.000}, {c.CiUpper:+0.000;-0.000;0.000}] | {c.PValue:G3} |\n");
        }
        return sb.ToString();
    }
}
