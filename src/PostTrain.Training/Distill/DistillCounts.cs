// Running counts of a distillation run (kept in state.json so a resumed run's statistics cover the whole run) and the
// final statistics: pass rate = samples whose reward reached min_reward / samples; solve rate (pass@k with k =
// samples_per_problem) = problems with at least one such sample / problems; pass@1 = mean over problems of the
// per-problem pass share (an unbiased pass@1 estimate from k samples). Printed as a table and written to stats.json.
using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;

namespace PostTrain.Training.Distill;

public sealed class DistillCounts
{
    [JsonPropertyName("problems")] public long Problems { get; set; }
    [JsonPropertyName("samples")] public long Samples { get; set; }
    /// <summary>Samples whose weighted reward reached min_reward (before the other filters).</summary>
    [JsonPropertyName("passed")] public long Passed { get; set; }
    [JsonPropertyName("kept")] public long Kept { get; set; }
    [JsonPropertyName("problems_solved")] public long ProblemsSolved { get; set; }
    [JsonPropertyName("problems_kept")] public long ProblemsKept { get; set; }
    /// <summary>Sum over problems of passed / k (for pass@1).</summary>
    [JsonPropertyName("pass_share_sum")] public double PassShareSum { get; set; }
    [JsonPropertyName("rejected")] public Dictionary<string, long> Rejected { get; set; } = RejectReason.All.ToDictionary(r => r, _ => 0L);
    [JsonPropertyName("finish_reasons")] public Dictionary<string, long> FinishReasons { get; set; } = new();
    [JsonPropertyName("prompt_tokens")] public long PromptTokens { get; set; }
    [JsonPropertyName("completion_tokens")] public long CompletionTokens { get; set; }
    [JsonPropertyName("kept_completion_tokens")] public long KeptCompletionTokens { get; set; }

    [JsonIgnore] public double PassRate => Samples == 0 ? 0 : (double)Passed / Samples;
    [JsonIgnore] public double SolveRate => Problems == 0 ? 0 : (double)ProblemsSolved / Problems;
    [JsonIgnore] public double PassAt1 => Problems == 0 ? 0 : PassShareSum / Problems;

    public void Reject(string reason) => Rejected[reason] = Rejected.GetValueOrDefault(reason) + 1;

    public void Finished(string reason) => FinishReasons[reason] = FinishReasons.GetValueOrDefault(reason) + 1;
}

/// <summary>The numbers of a finished (or resumed-to-finish) run, as stats.json holds them.</summary>
public sealed record DistillStats
{
    [JsonPropertyName("teacher")] public string Teacher { get; init; } = "";
    [JsonPropertyName("dataset_rows")] public int DatasetRows { get; init; }
    [JsonPropertyName("decontaminated")] public int Decontaminated { get; init; }
    [JsonPropertyName("samples_per_problem")] public int SamplesPerProblem { get; init; }
    [JsonPropertyName("problems")] public long Problems { get; init; }
    [JsonPropertyName("samples")] public long Samples { get; init; }
    [JsonPropertyName("passed")] public long Passed { get; init; }
    [JsonPropertyName("kept")] public long Kept { get; init; }
    [JsonPropertyName("rejected")] public Dictionary<string, long> Rejected { get; init; } = new();
    [JsonPropertyName("pass_rate")] public double PassRate { get; init; }
    [JsonPropertyName("pass_at_1")] public double PassAt1 { get; init; }
    [JsonPropertyName("solve_rate")] public double SolveRate { get; init; }
    [JsonPropertyName("problems_kept")] public long ProblemsKept { get; init; }
    [JsonPropertyName("finish_reasons")] public Dictionary<string, long> FinishReasons { get; init; } = new();
    [JsonPropertyName("prompt_tokens")] public long PromptTokens { get; init; }
    [JsonPropertyName("completion_tokens")] public long CompletionTokens { get; init; }
    [JsonPropertyName("kept_completion_tokens")] public long KeptCompletionTokens { get; init; }
    [JsonPropertyName("shards")] public int Shards { get; init; }
    [JsonPropertyName("seconds")] public double Seconds { get; init; }

    public static DistillStats From(DistillCounts c, string teacher, int rows, int decontaminated, int k, int shards, double seconds) => new()
    {
        Teacher = teacher, DatasetRows = rows, Decontaminated = decontaminated, SamplesPerProblem = k,
        Problems = c.Problems, Samples = c.Samples, Passed = c.Passed, Kept = c.Kept,
        Rejected = new Dictionary<string, long>(c.Rejected), PassRate = c.PassRate, PassAt1 = c.PassAt1, SolveRate = c.SolveRate,
        ProblemsKept = c.ProblemsKept, FinishReasons = new Dictionary<string, long>(c.FinishReasons),
        PromptTokens = c.PromptTokens, CompletionTokens = c.CompletionTokens, KeptCompletionTokens = c.KeptCompletionTokens,
        Shards = shards, Seconds = seconds,
    };

    /// <summary>A two-column text table of the statistics.</summary>
    public string ToTable()
    {
        var inv = CultureInfo.InvariantCulture;
        string Pct(long n, long of) => of == 0 ? "" : string.Create(inv, $" ({100.0 * n / of:F1}%)");
        var rows = new List<(string, string)>
        {
            ("teacher", Teacher),
            ("dataset rows", Rows(DatasetRows)),
            ("decontaminated (dropped)", Rows(Decontaminated) + Pct(Decontaminated, DatasetRows)),
            ("problems", Rows(Problems)),
            ("samples", $"{Rows(Samples)} ({SamplesPerProblem} per problem)"),
            ("passed (reward >= min)", Rows(Passed) + Pct(Passed, Samples)),
            ("kept", Rows(Kept) + Pct(Kept, Samples)),
        };
        foreach (var r in RejectReason.All) rows.Add(($"  rejected: {r}", Rows(Rejected.GetValueOrDefault(r)) + Pct(Rejected.GetValueOrDefault(r), Samples)));
        rows.Add(("pass rate (pass@1)", string.Create(inv, $"{PassRate:F4} ({PassAt1:F4} per-problem mean)")));
        rows.Add(($"solve rate (pass@{SamplesPerProblem})", string.Create(inv, $"{SolveRate:F4}")));
        rows.Add(("problems with kept samples", Rows(ProblemsKept) + Pct(ProblemsKept, Problems)));
        rows.Add(("finish reasons", string.Join(", ", FinishReasons.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value}"))));
        rows.Add(("tokens (prompt / completion / kept)", $"{Rows(PromptTokens)} / {Rows(CompletionTokens)} / {Rows(KeptCompletionTokens)}"));
        rows.Add(("shards", Rows(Shards)));
        rows.Add(("time", string.Create(inv, $"{Seconds:F1} s")));
        int w = rows.Max(r => r.Item1.Length);
        var sb = new StringBuilder();
        foreach (var (k, v) in rows) sb.Append(k.PadRight(w)).Append("  ").Append(v).Append('\n');
        return sb.ToString();
        static string Rows(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
    }
}
