// Per-reward statistics over a batch, as a GRPO trainer logs them ("rewards/<name>/mean", ".../std").
// Counts partition the batch: Count = Applicable + Nulls + Errors + Timeouts. Mean and Std are over applicable
// (non-null) scores; Std is the sample standard deviation (n - 1, as TRL's nanstd), null below two scores.
namespace PostTrain.Rewards;

public sealed record RewardStats(
    string Name,
    double Weight,
    int Count,
    int Applicable,
    int Nulls,
    int Errors,
    int Timeouts,
    double? Mean,
    double? Std,
    IReadOnlyDictionary<string, double> MetricMeans,
    IReadOnlyList<string> ErrorMessages)
{
    /// <summary>Up to this many distinct error messages are kept per reward.</summary>
    public const int MaxErrorMessages = 5;

    public static RewardStats From(string name, double weight, IReadOnlyList<RewardCall> calls)
    {
        var scores = calls.Where(c => c.Score is not null).Select(c => c.Score!.Value).ToList();
        var errors = calls.Count(c => c.Status == RewardCallStatus.Error);
        var timeouts = calls.Count(c => c.Status == RewardCallStatus.Timeout);
        var nulls = calls.Count(c => c.Status == RewardCallStatus.Ok && c.Score is null);
        var metricMeans = calls.Where(c => c.Result.Metrics is not null).SelectMany(c => c.Result.Metrics!)
            .GroupBy(kv => kv.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Average(kv => kv.Value), StringComparer.Ordinal);
        var messages = calls.Where(c => c.Error is not null).Select(c => c.Error!).Distinct().Take(MaxErrorMessages).ToList();
        return new RewardStats(name, weight, calls.Count, scores.Count, nulls, errors, timeouts,
            MeanOf(scores), SampleStdOf(scores), metricMeans, messages);
    }

    public static double? MeanOf(IReadOnlyList<double> xs) => xs.Count == 0 ? null : xs.Average();

    public static double? SampleStdOf(IReadOnlyList<double> xs)
    {
        if (xs.Count < 2) return null;
        var mean = xs.Average();
        return System.Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1));
    }
}
