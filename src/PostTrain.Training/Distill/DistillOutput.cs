// The distilled dataset on disk: <output_dir>/data/shard-NNNNN.parquet, one shard per problems_per_shard problems
// (a shard where every sample was rejected is not written), each written atomically; and <output_dir>/state.json, the
// resume manifest (settings fingerprint, shards done, running counts), rewritten atomically after each shard. A crash
// between the two leaves a shard the state does not list: the resumed run rewrites it.
// Rows: `messages` (user turn + assistant trace, what the sft recipe's messages format reads), the same as `prompt` /
// `completion` (its prompt_completion format), then provenance.
using System.Text.Json;
using System.Text.Json.Serialization;
using PostTrain.Data.Generators;
using PostTrain.Training.Infra;

namespace PostTrain.Training.Distill;

public sealed class DistillRow
{
    [JsonPropertyName("messages")] public List<MessageRow> Messages { get; set; } = [];
    [JsonPropertyName("prompt")] public string Prompt { get; set; } = "";
    [JsonPropertyName("completion")] public string Completion { get; set; } = "";
    [JsonPropertyName("problem_id")] public string ProblemId { get; set; } = "";
    [JsonPropertyName("problem_index")] public int ProblemIndex { get; set; }
    [JsonPropertyName("source_file")] public string SourceFile { get; set; } = "";
    [JsonPropertyName("source_row")] public long SourceRow { get; set; }
    [JsonPropertyName("teacher")] public string Teacher { get; set; } = "";
    [JsonPropertyName("sample_index")] public int SampleIndex { get; set; }
    [JsonPropertyName("reward")] public double Reward { get; set; }
    [JsonPropertyName("verdicts")] public List<VerdictRow> Verdicts { get; set; } = [];
    [JsonPropertyName("prompt_tokens")] public int PromptTokens { get; set; }
    [JsonPropertyName("completion_tokens")] public int CompletionTokens { get; set; }
    [JsonPropertyName("finish_reason")] public string FinishReason { get; set; } = "";
}

public sealed class MessageRow
{
    [JsonPropertyName("role")] public string Role { get; set; } = "";
    [JsonPropertyName("content")] public string Content { get; set; } = "";
}

/// <summary>One reward's verdict on a sample: its score (null = not applicable or failed) and its reason.</summary>
public sealed class VerdictRow
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("score")] public double? Score { get; set; }
    [JsonPropertyName("reason")] public string? Reason { get; set; }
}

public sealed record ShardInfo
{
    [JsonPropertyName("index")] public int Index { get; init; }
    [JsonPropertyName("file")] public string? File { get; init; }
    [JsonPropertyName("first_problem")] public int FirstProblem { get; init; }
    [JsonPropertyName("end_problem")] public int EndProblem { get; init; }
    [JsonPropertyName("rows")] public int Rows { get; init; }
}

public sealed record DistillState
{
    [JsonPropertyName("version")] public int Version { get; init; } = 1;
    [JsonPropertyName("settings")] public Dictionary<string, string> Settings { get; init; } = new();
    [JsonPropertyName("shards")] public List<ShardInfo> Shards { get; init; } = [];
    [JsonPropertyName("counts")] public DistillCounts Counts { get; init; } = new();
    [JsonPropertyName("seconds")] public double Seconds { get; init; }

    [JsonIgnore] public int NextProblem => Shards.Count == 0 ? 0 : Shards[^1].EndProblem;
}

public static class DistillOutput
{
    public const string DataDir = "data", StateFile = "state.json", StatsFile = "stats.json";
    internal static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static string ShardName(int index) => $"shard-{index:D5}.parquet";

    /// <summary>Writes the shard's rows (atomically; none = no file) and returns the path relative to the run, or null.</summary>
    public static string? WriteShard(string outputDir, int index, IReadOnlyCollection<DistillRow> rows)
    {
        var relative = ShardFile(index, rows.Count);
        if (relative is not null) DatasetFiles.WriteParquet(Path.Combine(outputDir, relative), rows);
        return relative;
    }

    /// <summary>Shard index's file relative to the output folder; null when it has no rows (no file).</summary>
    public static string? ShardFile(int index, int rows) => rows == 0 ? null : Path.Combine(DataDir, ShardName(index));

    public static DistillState? ReadState(string outputDir)
    {
        var path = Path.Combine(outputDir, StateFile);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<DistillState>(File.ReadAllText(path), Json)
                ?? throw new JsonException("empty document");
        }
        catch (JsonException e)
        {
            throw new RecipeConfigException($"{path}: not a readable distill state file ({e.Message}); remove it or set output.resume=false to start over");
        }
    }

    public static void WriteState(string outputDir, DistillState state) =>
        AtomicFile.WriteAllText(Path.Combine(outputDir, StateFile), JsonSerializer.Serialize(state, Json));

    /// <summary>Removes a previous run's shards and state (output.resume=false).</summary>
    public static void Clear(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return;
        var data = Path.Combine(outputDir, DataDir);
        if (Directory.Exists(data))
            foreach (var f in Directory.EnumerateFiles(data, "shard-*.parquet*")) File.Delete(f);
        foreach (var f in new[] { StateFile, StatsFile }) File.Delete(Path.Combine(outputDir, f));
    }
}
