// What a C# script plugin returns: a score (null = not applicable), an optional reason and named metrics.
// A plain number converts implicitly, so a plugin may simply return 1.0 or 0.0.
namespace PostTrain.Rewards.Plugins;

public sealed record RewardOutput(double? Score, string? Reason = null, IReadOnlyDictionary<string, double>? Metrics = null)
{
    public static implicit operator RewardOutput(double score) => new(score);

    /// <summary>Not applicable to this sample (e.g. the column the reward needs is missing).</summary>
    public static RewardOutput Skip(string reason) => new(null, reason);

    internal RewardResult ToResult() => new(Score, Reason, Metrics);
}
