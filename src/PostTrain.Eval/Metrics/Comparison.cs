// Checkpoint comparison on the same problems (greedy correctness): the accuracy difference B - A, a seeded 95% paired
// bootstrap interval of it (problems resampled together, so per-problem difficulty cancels), and McNemar's exact
// test on the discordant problems. A difference is called significant when p < 0.05 (the interval then usually
// excludes 0 as well; the two can disagree near the boundary).
namespace PostTrain.Eval.Metrics;

public sealed record Comparison(
    string Task,
    string ModelA,
    string ModelB,
    int Problems,
    double AccuracyA,
    double AccuracyB,
    double Difference,
    Interval DifferenceCi,
    int OnlyA,
    int OnlyB,
    double PValue)
{
    public bool Significant => PValue < 0.05;

    public static Comparison Compute(string task, string modelA, string modelB, IReadOnlyList<bool> a, IReadOnlyList<bool> b,
        ulong bootstrapSeed, int resamples)
    {
        if (a.Count != b.Count || a.Count == 0) throw new ArgumentException($"{task}: comparison needs the same non-empty problems for both models (got {a.Count} and {b.Count})");
        var da = a.Select(x => x ? 1.0 : 0.0).ToArray();
        var db = b.Select(x => x ? 1.0 : 0.0).ToArray();
        var (onlyA, onlyB) = McNemar.Discordant(a, b);
        return new Comparison(task, modelA, modelB, a.Count, da.Average(), db.Average(), db.Average() - da.Average(),
            Bootstrap.PairedDifferenceInterval(da, db, bootstrapSeed, resamples), onlyA, onlyB, McNemar.ExactPValue(onlyA, onlyB));
    }
}
