using PostTrain.Eval.Metrics;

namespace PostTrain.Eval.Tests;

public sealed class MetricsTests
{
    private static double Choose(int n, int k)
    {
        double r = 1;
        for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
        return r;
    }

    [Theory]
    [InlineData(5, 2, 2, 0.7)]          // 1 - C(3,2)/C(5,2) = 1 - 3/10
    [InlineData(5, 0, 3, 0.0)]
    [InlineData(5, 5, 1, 1.0)]
    [InlineData(4, 1, 1, 0.25)]
    [InlineData(10, 3, 8, 1.0)]         // n - c = 7 < k: every 8-subset holds a correct one
    [InlineData(10, 3, 5, 1 - 21.0 / 252)]   // 1 - C(7,5)/C(10,5)
    public void PassAtKMatchesHandValues(int n, int c, int k, double expected) =>
        Assert.Equal(expected, PassAtK.Estimate(n, c, k), 12);

    [Fact]
    public void PassAtKMatchesBinomialFormulaAndStaysStableForLargeN()
    {
        for (int n = 1; n <= 30; n++)
            for (int c = 0; c <= n; c++)
                for (int k = 1; k <= n; k++)
                {
                    double exact = n - c < k ? 1 : 1 - Choose(n - c, k) / Choose(n, k);
                    Assert.Equal(exact, PassAtK.Estimate(n, c, k), 10);
                }
        // C(2000, 1000) overflows double; the product form does not
        double v = PassAtK.Estimate(2000, 3, 1000);
        Assert.Equal(1 - (1000.0 * 999 * 998) / (2000.0 * 1999 * 1998), v, 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(3, 1, 4));
        Assert.Equal([1, 2, 4, 5], PassAtK.ReportedKs(5));
        Assert.Equal([1, 2, 4, 8], PassAtK.ReportedKs(8));
    }

    [Fact]
    public void MajorityVoteCountsAnswersAndBreaksTiesByFirstSample()
    {
        MajorityVote.Vote V(string? a, bool ok) => new(a, ok);
        // clear winner "4" (2 votes) over "5"
        var o = MajorityVote.Decide([V("5", false), V("4", true), V("4", true)]);
        Assert.Equal(("4", 2, true), (o.Answer, o.Count, o.Correct));
        // tie 2-2: "7" appears first (sample 0), so it wins, and it is wrong
        o = MajorityVote.Decide([V("7", false), V("3", true), V("3", true), V("7", false)]);
        Assert.Equal(("7", 2, false), (o.Answer, o.Count, o.Correct));
        // same votes in another order: now "3" is first
        o = MajorityVote.Decide([V("3", true), V("7", false), V("7", false), V("3", true)]);
        Assert.Equal(("3", 2, true), (o.Answer, o.Count, o.Correct));
        // samples without an answer do not vote, even when they are the majority
        o = MajorityVote.Decide([V(null, false), V(null, false), V("9", true)]);
        Assert.Equal(("9", 1, true), (o.Answer, o.Count, o.Correct));
        o = MajorityVote.Decide([V(null, false), V(null, false)]);
        Assert.Equal((null, 0, false), (o.Answer, o.Count, o.Correct));
    }

    [Fact]
    public void BootstrapIsDeterministicPerSeedAndDegenerateOnConstantData()
    {
        var data = new double[] { 1, 0, 1, 1, 0, 1, 0, 1, 1, 1 };
        var a = Bootstrap.MeanInterval(data, seed: 42);
        var b = Bootstrap.MeanInterval(data, seed: 42);
        Assert.Equal(a, b);
        var smooth = Enumerable.Range(0, 30).Select(i => i * 7 % 11 / 10.0).ToArray();   // many distinct resampled means
        Assert.Equal(Bootstrap.MeanInterval(smooth, seed: 42), Bootstrap.MeanInterval(smooth, seed: 42));
        Assert.NotEqual(Bootstrap.MeanInterval(smooth, seed: 42), Bootstrap.MeanInterval(smooth, seed: 43));
        Assert.True(a.Lower < 0.7 && a.Upper > 0.7 && a.Lower >= 0 && a.Upper <= 1, a.ToString());
        Assert.Equal(new Interval(1, 1), Bootstrap.MeanInterval([1, 1, 1, 1], 1));
        // quantile type 7 by hand: sorted [1,2,3,4], q = 0.25 -> h = 0.75 -> 1.75
        Assert.Equal(1.75, Bootstrap.Quantile([1, 2, 3, 4], 0.25), 12);
    }

    [Fact]
    public void BootstrapIntervalCoversTheTrueMeanAboutNinetyFivePercentOfTheTime()
    {
        // Bernoulli(0.3) data sets of 200 problems: the 95% interval should hold 0.3 in roughly 95% of 300 trials
        // (binomial sd ~1.3%; percentile intervals run slightly narrow, so accept 89%..99%).
        var rng = new Random(5);
        int covered = 0, trials = 300;
        for (int t = 0; t < trials; t++)
        {
            var data = Enumerable.Range(0, 200).Select(_ => rng.NextDouble() < 0.3 ? 1.0 : 0.0).ToArray();
            if (Bootstrap.MeanInterval(data, (ulong)t, resamples: 1000).Contains(0.3)) covered++;
        }
        double rate = covered / (double)trials;
        Assert.InRange(rate, 0.89, 0.99);
    }

    [Fact]
    public void McNemarExactPValueMatchesHandComputation()
    {
        // b = 1, c = 6: p = 2 * (C(7,0) + C(7,1)) / 2^7 = 2 * 8 / 128 = 0.125
        Assert.Equal(0.125, McNemar.ExactPValue(1, 6), 12);
        Assert.Equal(0.125, McNemar.ExactPValue(6, 1), 12);
        // b = 0, c = 5: p = 2 / 32 = 0.0625; b = 0, c = 6: 2 / 64 = 0.03125
        Assert.Equal(0.0625, McNemar.ExactPValue(0, 5), 12);
        Assert.Equal(0.03125, McNemar.ExactPValue(0, 6), 12);
        Assert.Equal(1.0, McNemar.ExactPValue(3, 3));
        Assert.Equal(1.0, McNemar.ExactPValue(0, 0));
        // large counts stay finite: b = 400, c = 600 is very significant
        Assert.InRange(McNemar.ExactPValue(400, 600), 0, 1e-9);
        var (onlyA, onlyB) = McNemar.Discordant([true, true, false, false, true], [true, false, true, true, false]);
        Assert.Equal((2, 2), (onlyA, onlyB));
    }

    [Fact]
    public void ComparisonOnHandCase()
    {
        // 10 problems: A right on 0..3; B right on 0..1 and 4..9 -> only A: 2, 3; only B: 4..9 (6)
        var a = Enumerable.Range(0, 10).Select(i => i < 4).ToList();
        var b = Enumerable.Range(0, 10).Select(i => i < 2 || i >= 4).ToList();
        var c = Comparison.Compute("t", "A", "B", a, b, bootstrapSeed: 3, resamples: 2000);
        Assert.Equal((0.4, 0.8, 2, 6), (c.AccuracyA, c.AccuracyB, c.OnlyA, c.OnlyB));
        Assert.Equal(0.4, c.Difference, 12);
        // p = 2 * (C(8,0) + C(8,1) + C(8,2)) / 2^8 = 2 * 37 / 256
        Assert.Equal(74.0 / 256, c.PValue, 12);
        Assert.False(c.Significant);
        Assert.True(c.DifferenceCi.Contains(0.4));
        Assert.Equal(c.DifferenceCi, Comparison.Compute("t", "A", "B", a, b, 3, 2000).DifferenceCi);
    }
}
