// One generated and scored sample, as stored (one JSON line each) in samples.jsonl and in the per-sample tables.
// Key: (Model, Task, Mode, Problem, Sample). Mode "greedy" (one sample, temperature 0) or "sampled" (k samples).
using System.Text.Json.Serialization;

namespace PostTrain.Eval.Runner;

public sealed record EvalSample
{
    public const string Greedy = "greedy", Sampled = "sampled";

    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("task")] public required string Task { get; init; }
    [JsonPropertyName("mode")] public required string Mode { get; init; }
    [JsonPropertyName("problem")] public required int Problem { get; init; }
    [JsonPropertyName("sample")] public required int Sample { get; init; }
    [JsonPropertyName("category")] public string? Category { get; init; }
    [JsonPropertyName("prompt")] public required string Prompt { get; init; }
    [JsonPropertyName("completion")] public required string Completion { get; init; }
    /// <summary>The normalised final answer maj@k votes on (null = none or not extracted).</summary>
    [JsonPropertyName("answer")] public string? Answer { get; init; }
    /// <summary>The checker's score; null = not applicable or the checker failed (see Reason).</summary>
    [JsonPropertyName("reward")] public double? Reward { get; init; }
    [JsonPropertyName("correct")] public required bool Correct { get; init; }
    [JsonPropertyName("reason")] public string? Reason { get; init; }
    [JsonPropertyName("prompt_tokens")] public required int PromptTokens { get; init; }
    [JsonPropertyName("completion_tokens")] public required int CompletionTokens { get; init; }
    [JsonPropertyName("finish_reason")] public required string FinishReason { get; init; }

    [JsonIgnore] public (string, string, string, int, int) Key => (Model, Task, Mode, Problem, Sample);

    /// <summary>Solved = the checker's score is 1 (within 1e-9); partial credit is not solved.</summary>
    public static bool IsCorrect(double? reward) => reward is double r && r >= 1 - 1e-9;
}
