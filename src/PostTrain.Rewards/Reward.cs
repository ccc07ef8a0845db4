// The reward contract. A reward is a pure function of strings and numbers (never tensors):
// the prompt, the completion and the dataset row's other columns in, a score (or null = not applicable,
// the trainer then ignores this reward for that sample), optional named metrics and a short reason out.
namespace PostTrain.Rewards;

/// <summary>One sample to score. <see cref="Columns"/> holds the dataset row's other columns
/// (e.g. "answer", "tests"), as strings, numbers, booleans or lists of those, as read from the dataset.</summary>
public sealed record RewardInput(string Prompt, string Completion, IReadOnlyDictionary<string, object?> Columns)
{
    public static readonly IReadOnlyDictionary<string, object?> NoColumns = new Dictionary<string, object?>();

    /// <summary>The column as text (numbers formatted invariantly), or null when absent.</summary>
    public string? Column(string name) => Columns.TryGetValue(name, out var v) ? v switch
    {
        null => null,
        string s => s,
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString(),
    } : null;
}

/// <summary>A reward's verdict on one sample. <see cref="Score"/> null = not applicable.</summary>
public sealed record RewardResult(double? Score, string? Reason = null, IReadOnlyDictionary<string, double>? Metrics = null)
{
    public static RewardResult NotApplicable(string reason) => new(null, reason);
}

/// <summary>A reward function. Implementations must be thread-safe: a batch is scored in parallel.</summary>
public interface IReward
{
    /// <summary>The name recipes use (e.g. "math", "format", or a plugin's file name).</summary>
    string Name { get; }

    RewardResult Score(RewardInput input, CancellationToken cancellationToken);
}

/// <summary>A reward that scores a whole batch in one call (e.g. a neural reward model: a forward pass per
/// micro-batch instead of one per completion). RewardRunner calls <see cref="ScoreBatch"/> once per batch;
/// <see cref="IReward.Score"/> stays available for single samples.</summary>
public interface IBatchReward : IReward
{
    /// <summary>One result per input, in order.</summary>
    IReadOnlyList<RewardResult> ScoreBatch(IReadOnlyList<RewardInput> inputs, CancellationToken cancellationToken);
}
