// McNemar's exact test for two models scored right/wrong on the same problems. Only discordant problems carry
// information: b = A right and B wrong, c = A wrong and B right. Under "no difference" b ~ Binomial(b + c, 1/2); the
// two-sided p-value is min(1, 2 * P(X <= min(b, c))). Terms are summed in log space (no overflow for large b + c).
namespace PostTrain.Eval.Metrics;

public static class McNemar
{
    /// <summary>Counts of the 2x2 table's discordant cells.</summary>
    public static (int OnlyA, int OnlyB) Discordant(IReadOnlyList<bool> a, IReadOnlyList<bool> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"McNemar needs paired results of equal length (got {a.Count} and {b.Count})");
        int onlyA = 0, onlyB = 0;
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i] && !b[i]) onlyA++;
            else if (!a[i] && b[i]) onlyB++;
        }
        return (onlyA, onlyB);
    }

    /// <summary>Exact two-sided p-value from the discordant counts; 1 when there are none.</summary>
    public static double ExactPValue(int onlyA, int onlyB)
    {
        if (onlyA < 0 || onlyB < 0) throw new ArgumentOutOfRangeException(nameof(onlyA), "discordant counts must be >= 0");
        int n = onlyA + onlyB, m = System.Math.Min(onlyA, onlyB);
        if (n == 0) return 1.0;
        double logTerm = -n * System.Math.Log(2);   // log C(n, 0) / 2^n
        double tail = System.Math.Exp(logTerm);
        for (int i = 0; i < m; i++)
        {
            logTerm += System.Math.Log(n - i) - System.Math.Log(i + 1);   // C(n, i+1) = C(n, i) (n - i) / (i + 1)
            tail += System.Math.Exp(logTerm);
        }
        return System.Math.Min(1.0, 2 * tail);
    }
}
