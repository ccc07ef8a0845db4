// pass@k, the unbiased estimator of Chen et al. (2021, Codex): with n samples of which c are correct,
// pass@k = 1 - C(n-c, k) / C(n, k). Computed as the product 1 - prod_{i=n-c+1..n} (1 - k/i), which never forms a
// binomial coefficient (no overflow, no cancellation for large n).
namespace PostTrain.Eval.Metrics;

public static class PassAtK
{
    /// <summary>Probability that at least one of k samples drawn without replacement from n (c correct) is correct.</summary>
    public static double Estimate(int n, int c, int k)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"pass@k needs n >= 1 samples (got {n})");
        if (c < 0 || c > n) throw new ArgumentOutOfRangeException(nameof(c), $"correct count must be in [0, {n}] (got {c})");
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"k must be in [1, n = {n}] (got {k})");
        if (n - c < k) return 1.0;
        double prod = 1.0;
        for (int i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / i;
        return 1.0 - prod;
    }

    /// <summary>The k values a report shows for n samples: 1, 2, 4, ... up to n, and n itself.</summary>
    public static IReadOnlyList<int> ReportedKs(int n)
    {
        var ks = new List<int>();
        for (int k = 1; k <= n; k *= 2) ks.Add(k);
        if (n >= 1 && ks[^1] != n) ks.Add(n);
        return ks;
    }
}
