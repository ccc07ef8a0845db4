using PostTrain.Core.Generation;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

public sealed class SamplingTests
{
    static Tensor LogitsOf(params double[] probs) => tensor(probs.Select(p => (float)Math.Log(p)).ToArray()).view(1, -1);

    static bool[] Kept(Tensor filtered) => filtered.view(-1).data<float>().ToArray().Select(float.IsFinite).ToArray();

    [Fact]
    public void TopKKeepsTheKLargestAndTies()
    {
        Assert.Equal([false, true, true, false], Kept(LogitsProcessors.TopK(tensor(new float[] { 1, 3, 2, 0 }).view(1, 4), 2)));
        Assert.Equal([false, true, true, false], Kept(LogitsProcessors.TopK(tensor(new float[] { 1, 2, 2, 0 }).view(1, 4), 1)));
        var kept = LogitsProcessors.TopK(tensor(new float[] { 1, 3, 2, 0 }).view(1, 4), 2).view(-1).data<float>().ToArray();
        Assert.Equal(3f, kept[1]);                                                    // surviving logits unchanged
        Assert.Equal(2f, kept[2]);
    }

    [Fact]
    public void TopPKeepsTheSmallestPrefixReachingP()
    {
        // probs 0.5, 0.2, 0.25, 0.05 -> sorted 0.5 (t0), 0.25 (t2), 0.2 (t1), 0.05 (t3); mass before: 0, 0.5, 0.75, 0.95
        var l = LogitsOf(0.5, 0.2, 0.25, 0.05);
        Assert.Equal([true, false, true, false], Kept(LogitsProcessors.TopP(l, 0.6)));
        Assert.Equal([true, false, false, false], Kept(LogitsProcessors.TopP(l, 0.45)));
        Assert.Equal([true, true, true, false], Kept(LogitsProcessors.TopP(l, 0.8)));
        Assert.Equal([true, true, true, true], Kept(LogitsProcessors.TopP(l, 0.97)));
    }

    [Fact]
    public void MinPDropsTokensBelowAFractionOfTheTopProbability()
    {
        var l = LogitsOf(0.5, 0.2, 0.25, 0.05);
        Assert.Equal([true, false, true, false], Kept(LogitsProcessors.MinP(l, 0.45)));    // threshold 0.225
        Assert.Equal([true, true, true, false], Kept(LogitsProcessors.MinP(l, 0.3)));      // threshold 0.15
    }

    [Fact]
    public void TopPAppliesAfterTopKOnRenormalisedProbabilities()
    {
        // probs 0.4, 0.3, 0.2, 0.1. top-p 0.55 alone keeps t0, t1 (mass before t1 = 0.4).
        // After top-k 2 the kept probs are 0.571, 0.429: mass before t1 = 0.571 >= 0.55, so only t0 stays.
        var l = LogitsOf(0.4, 0.3, 0.2, 0.1);
        Assert.Equal([true, true, false, false], Kept(LogitsProcessors.Apply(l, new SamplingParams(TopP: 0.55))));
        Assert.Equal([true, false, false, false], Kept(LogitsProcessors.Apply(l, new SamplingParams(TopK: 2, TopP: 0.55))));
        Assert.Equal([true, true, true, true], Kept(LogitsProcessors.Apply(l, new SamplingParams())));
    }

    [Fact]
    public void SamplerDrawsFromTheFilteredDistributionAndReportsUntruncatedLogProbs()
    {
        const int n = 20000;
        var logits = LogitsOf(0.5, 0.3, 0.2).expand(n, 3).contiguous();
        var (tok, lp) = Sampler.Sample(logits, new SamplingParams(Seed: 123));
        var counts = tok.bincount(null, 3).data<long>().ToArray();
        Assert.InRange(counts[0] / (double)n, 0.485, 0.515);
        Assert.InRange(counts[1] / (double)n, 0.285, 0.315);
        Assert.InRange(counts[2] / (double)n, 0.185, 0.215);

        (tok, lp) = Sampler.Sample(logits, new SamplingParams(TopK: 2, Seed: 5));
        counts = tok.bincount(null, 3).data<long>().ToArray();
        Assert.Equal(0, counts[2]);
        Assert.InRange(counts[0] / (double)n, 0.61, 0.64);                            // 0.5 / 0.8 = 0.625
        var t = tok.data<long>().ToArray();
        var l = lp.data<float>().ToArray();
        for (int i = 0; i < 50; i++) Assert.Equal(Math.Log(t[i] == 0 ? 0.5 : 0.3), l[i], 5);   // not log 0.625

        // temperature 2: p ~ sqrt(p), log-probs of that distribution
        (tok, lp) = Sampler.Sample(logits, new SamplingParams(Temperature: 2, Seed: 6), null, step: 3);
        double z = Math.Sqrt(0.5) + Math.Sqrt(0.3) + Math.Sqrt(0.2);
        Assert.Equal(Math.Log(Math.Sqrt(0.5) / z), lp.data<float>().ToArray().Where((_, i) => tok.data<long>()[i] == 0).First(), 5);
        Assert.InRange(tok.eq(0).sum().item<long>() / (double)n, Math.Sqrt(0.5) / z - 0.015, Math.Sqrt(0.5) / z + 0.015);
    }

    [Fact]
    public void GreedyPicksArgmaxWithTemperatureOneLogProbs()
    {
        var logits = tensor(new float[] { 0.1f, 2f, 1f, 5f, 4.9f, 0f }).view(2, 3);
        var (tok, lp) = Sampler.Sample(logits, SamplingParams.Greedy());
        Assert.Equal(new long[] { 1, 0 }, tok.data<long>().ToArray());
        double z0 = Math.Exp(0.1) + Math.Exp(2) + Math.Exp(1);
        Assert.Equal(2 - Math.Log(z0), lp.data<float>()[0], 5);
    }

    [Fact]
    public void CounterRngOnTheDeviceEqualsTheHostReferenceAndLooksUniform()
    {
        var keys = tensor(new long[] { 0, 1, 7, 123456, int.MaxValue });
        foreach (var (seed, step) in new[] { (0L, 0L), (42L, 5L), (-3L, 1000L), (long.MaxValue, 77L) })
        {
            var u = CounterRng.Uniform(seed, keys, step, 300).data<float>().ToArray();          // (5, 300)
            for (int r = 0; r < 5; r++)
                for (int v = 0; v < 300; v += 37)
                    Assert.Equal(CounterRng.UniformHost(seed, keys[r].item<long>(), step, v), u[r * 300 + v]);
        }
        var big = CounterRng.Uniform(9, arange(64L), 1, 4096);                        // 262144 draws
        Assert.True(big.min().item<float>() > 0 && big.max().item<float>() < 1);
        Assert.InRange(big.mean().item<float>(), 0.497, 0.503);
        var hist = (big * 10).floor().to(ScalarType.Int64).view(-1).bincount(null, 10).data<long>().ToArray();
        foreach (var c in hist) Assert.InRange(c / 262144.0, 0.095, 0.105);
        Assert.NotEqual(CounterRng.UniformHost(9, 1, 1, 0), CounterRng.UniformHost(9, 1, 2, 0));   // step changes the stream
        Assert.NotEqual(CounterRng.UniformHost(9, 1, 1, 0), CounterRng.UniformHost(10, 1, 1, 0));  // seed too
    }

    [Fact]
    public void BadParametersNameTheField()
    {
        Assert.Contains("TopP", Assert.Throws<ArgumentException>(() => new SamplingParams(TopP: 0).Validate()).Message);
        Assert.Contains("Temperature", Assert.Throws<ArgumentException>(() => new SamplingParams(Temperature: -1).Validate()).Message);
        Assert.Contains("MinP", Assert.Throws<ArgumentException>(() => new SamplingParams(MinP: 1).Validate()).Message);
        Assert.Contains("MaxNewTokens", Assert.Throws<ArgumentException>(() => new SamplingParams(MaxNewTokens: 0).Validate()).Message);
        Assert.Contains("StopStrings[1]", Assert.Throws<ArgumentException>(() => new SamplingParams(StopStrings: ["a", ""]).Validate()).Message);
    }
}
