// Seeded percentile bootstrap for the mean of per-problem scores (accuracy) and for the mean paired difference of
// two models on the same problems. Resampling draws problem indices with replacement from SplitMix64(seed), so a
// seed gives the same interval on every machine. The interval is the (alpha/2, 1 - alpha/2) quantiles of the resampled
// means (linear interpolation between order statistics). Simplification: plain percentile, no BCa correction.
using PostTrain.Data.Generators;

namespace PostTrain.Eval.Metrics;

public readonly record struct Interval(double Lower, double Upper)
{
    public bool Contains(double x) => x >= Lower && x <= Upper;
    public override string ToString() => $"[{Lower:F3}, {Upper:F3}]";
}

public static class Bootstrap
{
    public const int DefaultResamples = 2000;

    /// <summary>Percentile interval of the mean of <paramref name="values"/>; (NaN, NaN) when empty.</summary>
    public static Interval MeanInterval(IReadOnlyList<double> values, ulong seed, int resamples = DefaultResamples, double confidence = 0.95)
    {
        Check(resamples, confidence);
        int n = values.Count;
        if (n == 0) return new Interval(double.NaN, double.NaN);
        var rng = new SplitMix64(seed);
        var means = new double[resamples];
        for (int b = 0; b < resamples; b++)
        {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += values[(int)(rng.NextUInt64() % (ulong)n)];
            means[b] = sum / n;
        }
        return Percentiles(means, confidence);
    }

    /// <summary>Paired bootstrap: interval of mean(b - a) over problems resampled together.</summary>
    public static Interval PairedDifferenceInterval(IReadOnlyList<double> a, IReadOnlyList<double> b, ulong seed,
        int resamples = DefaultResamples, double confidence = 0.95)
    {
        if (a.Count != b.Count) throw new ArgumentException($"paired bootstrap needs equal lengths (got {a.Count} and {b.Count})");
        var diff = a.Select((x, i) => b[i] - x).ToArray();
        return MeanInterval(diff, seed, resamples, confidence);
    }

    /// <summary>Quantile q of sorted values, linear interpolation (Hyndman-Fan type 7, as numpy's default).</summary>
    public static double Quantile(double[] sorted, double q)
    {
        double h = (sorted.Length - 1) * q;
        int lo = (int)System.Math.Floor(h);
        int hi = System.Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    private static Interval Percentiles(double[] means, double confidence)
    {
        Array.Sort(means);
        double alpha = 1 - confidence;
        return new Interval(Quantile(means, alpha / 2), Quantile(means, 1 - alpha / 2));
    }

    private static void Check(int resamples, double confidence)
    {
        if (resamples < 1) throw new ArgumentOutOfRangeException(nameof(resamples), $"resamples must be >= 1 (got {resamples})");
        if (!(confidence > 0 && confidence < 1)) throw new ArgumentOutOfRangeException(nameof(confidence), $"confidence must be in (0, 1) (got {confidence})");
    }
}
