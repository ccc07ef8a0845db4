// What RewardRunner returns for a batch: every call ([sample][reward]), the weighted total per sample and the
// per-reward statistics; ToMetrics() flattens the statistics into the names a trainer logs.
namespace PostTrain.Rewards;

public sealed class RewardBatchResult(
    IReadOnlyList<string> names,
    IReadOnlyList<double> weights,
    IReadOnlyList<IReadOnlyList<RewardCall>> calls,
    IReadOnlyList<double?> totals,
    IReadOnlyList<RewardStats> stats)
{
    /// <summary>The rewards' names, one per column of <see cref="Calls"/>; a repeated name gets "#2", "#3".</summary>
    public IReadOnlyList<string> Names { get; } = names;
    public IReadOnlyList<double> Weights { get; } = weights;

    /// <summary>Calls[sample][reward].</summary>
    public IReadOnlyList<IReadOnlyList<RewardCall>> Calls { get; } = calls;

    /// <summary>Per sample: sum of weight * score over the rewards whose score is not null; null when all are null.</summary>
    public IReadOnlyList<double?> Totals { get; } = totals;

    public IReadOnlyList<RewardStats> Stats { get; } = stats;

    public double? Score(int sample, int reward) => Calls[sample][reward].Score;

    /// <summary>The result of these calls ([sample][reward]): totals and statistics computed from them (what
    /// RewardRunner returns; data-parallel recipes rebuild the global batch's result from every rank's calls).</summary>
    public static RewardBatchResult FromCalls(IReadOnlyList<string> names, IReadOnlyList<double> weights, IReadOnlyList<IReadOnlyList<RewardCall>> calls)
    {
        var totals = calls.Select(row => RewardRunner.Combine(row.Select(c => c.Score).ToList(), weights)).ToList();
        var stats = Enumerable.Range(0, names.Count)
            .Select(r => RewardStats.From(names[r], weights[r], calls.Select(row => row[r]).ToList())).ToList();
        return new RewardBatchResult(names, weights, calls, totals, stats);
    }

    /// <summary>Flat metrics: {prefix}{name}/mean, /std, /applicable, /nulls, /errors, /timeouts, /{metric},
    /// and {prefix}total/mean, /std (over samples with a non-null total). Absent statistics are left out.</summary>
    public IReadOnlyDictionary<string, double> ToMetrics(string prefix = "rewards/")
    {
        var m = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var s in Stats)
        {
            var p = prefix + s.Name + "/";
            if (s.Mean is { } mean) m[p + "mean"] = mean;
            if (s.Std is { } std) m[p + "std"] = std;
            m[p + "applicable"] = s.Applicable;
            m[p + "nulls"] = s.Nulls;
            m[p + "errors"] = s.Errors;
            m[p + "timeouts"] = s.Timeouts;
            foreach (var (k, v) in s.MetricMeans) m[p + k] = v;
        }
        var totals = Totals.Where(t => t is not null).Select(t => t!.Value).ToList();
        if (RewardStats.MeanOf(totals) is { } tm) m[prefix + "total/mean"] = tm;
        if (RewardStats.SampleStdOf(totals) is { } ts) m[prefix + "total/std"] = ts;
        return m;
    }
}
