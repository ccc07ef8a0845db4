using PostTrain.Core.Generation;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

public sealed class TokenGeneratorTests
{
    static readonly int[] Lengths = [3, 7, 5, 1];

    [Fact]
    public void GreedyEqualsArgmaxOfRepeatedFullForwards()
    {
        var m = GenTestModels.Micro(21);
        var prompts = GenTestModels.Prompts(4, Lengths);
        var results = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(8));
        for (int b = 0; b < prompts.Length; b++)
        {
            Assert.Equal(GenTestModels.GreedyByFullForward(m, prompts[b], 8), results[b].TokenIds);
            Assert.Equal(FinishReason.Length, results[b].FinishReason);
        }
    }

    [Fact]
    public void LogProbsAreLogSoftmaxOfFullForwardLogitsOverTemperature()
    {
        var m = GenTestModels.Micro(22);
        var prompts = GenTestModels.Prompts(5, Lengths);
        var p = new SamplingParams(Temperature: 0.7, TopK: 50, TopP: 0.9, MaxNewTokens: 6, Seed: 3);
        var results = new TokenGenerator(m).Generate(prompts, p);
        using var _ = no_grad();
        for (int b = 0; b < prompts.Length; b++)
        {
            var r = results[b];
            Assert.Equal(6, r.TokenIds.Length);
            var logits = GenTestModels.FullLogits(m, prompts[b].Concat(r.TokenIds));           // (L+6, V)
            var lp = (logits / 0.7).log_softmax(-1);
            for (int t = 0; t < 6; t++)
            {
                double expected = lp[prompts[b].Length - 1 + t, r.TokenIds[t]].item<float>();
                Assert.True(Math.Abs(expected - r.LogProbs[t]) < 1e-4, $"row {b} token {t}: {r.LogProbs[t]} vs {expected}");
            }
        }
    }

    [Fact]
    public void SamplingIsReproducibleWithTheSameSeedAndDiffersWithAnother()
    {
        var m = GenTestModels.Micro(23, std: 0.05);                                   // flat-ish distributions
        var prompts = GenTestModels.Prompts(6, Lengths);
        var g = new TokenGenerator(m);
        var a = g.Generate(prompts, new SamplingParams(MaxNewTokens: 10, Seed: 1));
        var b = g.Generate(prompts, new SamplingParams(MaxNewTokens: 10, Seed: 1));
        var c = g.Generate(prompts, new SamplingParams(MaxNewTokens: 10, Seed: 2));
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(a[i].TokenIds, b[i].TokenIds);
            Assert.Equal(a[i].LogProbs, b[i].LogProbs);
        }
        Assert.NotEqual(a.SelectMany(r => r.TokenIds), c.SelectMany(r => r.TokenIds));
    }

    /// <summary>The noise of prompt i's t-th token depends only on (seed, i, t): chunked and compacted runs sample
    /// the same tokens as one batch.</summary>
    [Fact]
    public void SamplesDoNotDependOnBatchLayout()
    {
        var m = GenTestModels.Micro(29, std: 0.05);
        var prompts = GenTestModels.Prompts(11, 3, 7, 5, 1, 4);
        var one = new TokenGenerator(m).Generate(prompts, new SamplingParams(MaxNewTokens: 8, Seed: 4));
        int eos = one[0].TokenIds[2];
        var p = new SamplingParams(MaxNewTokens: 8, Seed: 4, StopTokenIds: [eos]);
        var batched = new TokenGenerator(m, new GenerationOptions { CompactFinishedFraction = 1 }).Generate(prompts, p);
        var chunked = new TokenGenerator(m, new GenerationOptions { MaxBatchSize = 2, CompactFinishedFraction = 0.01 }).Generate(prompts, p);
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(batched[i].TokenIds, chunked[i].TokenIds);
            int at = Array.IndexOf(one[i].TokenIds, eos);
            Assert.Equal(at < 0 ? one[i].TokenIds : one[i].TokenIds.Take(at + 1), batched[i].TokenIds);
        }
    }

    /// <summary>FirstRowKey = k makes a call on prompts [k, n) draw what the whole call draws for them (a data-parallel
    /// rank's share of a batch); without it the share's rows take the whole call's first rows' streams.</summary>
    [Fact]
    public void FirstRowKeyGivesAShareOfACallTheWholeCallsSamples()
    {
        var m = GenTestModels.Micro(31, std: 0.05);                                   // flat-ish distributions
        var prompts = GenTestModels.Prompts(12, 3, 7, 5, 1, 4);
        var g = new TokenGenerator(m);
        var whole = g.Generate(prompts, new SamplingParams(MaxNewTokens: 8, Seed: 6));
        var share = g.Generate(prompts[2..], new SamplingParams(MaxNewTokens: 8, Seed: 6, FirstRowKey: 2));
        var unkeyed = g.Generate(prompts[2..], new SamplingParams(MaxNewTokens: 8, Seed: 6));
        for (int i = 0; i < share.Count; i++)
        {
            Assert.Equal(whole[i + 2].TokenIds, share[i].TokenIds);
            for (int t = 0; t < share[i].LogProbs.Length; t++)                          // another batch shape: fp32 rounding
                Assert.True(Math.Abs(whole[i + 2].LogProbs[t] - share[i].LogProbs[t]) < 1e-5, $"row {i + 2} token {t}");
        }
        Assert.NotEqual(whole.Skip(2).SelectMany(r => r.TokenIds), unkeyed.SelectMany(r => r.TokenIds));
        Assert.Throws<ArgumentException>(() => new SamplingParams(FirstRowKey: -1).Validate());
    }

    [Fact]
    public void TopKOneEqualsGreedy()
    {
        var m = GenTestModels.Micro(24);
        var prompts = GenTestModels.Prompts(7, Lengths);
        var g = new TokenGenerator(m);
        var greedy = g.Generate(prompts, SamplingParams.Greedy(7));
        var topk = g.Generate(prompts, new SamplingParams(Temperature: 1, TopK: 1, MaxNewTokens: 7, Seed: 9));
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(greedy[i].TokenIds, topk[i].TokenIds);
            for (int t = 0; t < 7; t++) Assert.True(Math.Abs(greedy[i].LogProbs[t] - topk[i].LogProbs[t]) < 1e-5, $"row {i} token {t}");
        }
    }

    [Fact]
    public void StopsOnAStopTokenAndKeepsIt()
    {
        var m = GenTestModels.Micro(25);
        var prompts = GenTestModels.Prompts(8, Lengths);
        var g = new TokenGenerator(m, new GenerationOptions { CompactFinishedFraction = 0.01 });
        var free = g.Generate(prompts, SamplingParams.Greedy(10));
        int eos = free[1].TokenIds[3];
        var stopped = g.Generate(prompts, SamplingParams.Greedy(10) with { StopTokenIds = [eos] });
        bool anyLength = false;
        for (int b = 0; b < prompts.Length; b++)
        {
            int at = Array.IndexOf(free[b].TokenIds, eos);
            if (at < 0)
            {
                anyLength = true;
                Assert.Equal(free[b].TokenIds, stopped[b].TokenIds);
                Assert.Equal(FinishReason.Length, stopped[b].FinishReason);
                Assert.Null(stopped[b].StopTokenId);
            }
            else
            {
                Assert.Equal(free[b].TokenIds.Take(at + 1), stopped[b].TokenIds);
                Assert.Equal(free[b].LogProbs.Take(at + 1), stopped[b].LogProbs);
                Assert.Equal(FinishReason.Stop, stopped[b].FinishReason);
                Assert.Equal(eos, stopped[b].StopTokenId);
            }
        }
        Assert.True(anyLength || stopped.Any(r => r.Length < 10), "the test needs rows that stop early");
    }

    [Fact]
    public void StopsOnAStopStringSpanningTwoTokens()
    {
        var m = GenTestModels.Micro(26);
        var prompts = GenTestModels.Prompts(9, Lengths);
        static string Text(IEnumerable<int> ids) => string.Concat(ids.Select(i => (char)('a' + i % 26)));
        var g = new TokenGenerator(m, new GenerationOptions { Decoder = new FuncTextDecoder(ids => Text(ids)) });
        var free = g.Generate(prompts, SamplingParams.Greedy(12));
        string stop = Text(free[2].TokenIds.Skip(4).Take(2));
        var stopped = g.Generate(prompts, SamplingParams.Greedy(12) with { StopStrings = [stop, "not-there"] });
        for (int b = 0; b < prompts.Length; b++)
        {
            int at = Text(free[b].TokenIds).IndexOf(stop, StringComparison.Ordinal);
            if (at < 0)
            {
                Assert.Equal(FinishReason.Length, stopped[b].FinishReason);
                Assert.Equal(12, stopped[b].Length);
            }
            else
            {
                Assert.Equal(free[b].TokenIds.Take(at + 2), stopped[b].TokenIds);   // up to the token completing it
                Assert.Equal(FinishReason.Stop, stopped[b].FinishReason);
                Assert.Equal(stop, stopped[b].StopString);
            }
        }
        Assert.Equal(FinishReason.Stop, stopped[2].FinishReason);
    }

    [Fact]
    public void ChunkingAndCompactionDoNotChangeGreedyOutput()
    {
        var m = GenTestModels.Micro(27);
        var prompts = GenTestModels.Prompts(10, 3, 7, 5, 1, 4, 6);
        var reference = new TokenGenerator(m, new GenerationOptions { CompactFinishedFraction = 1 }).Generate(prompts, SamplingParams.Greedy(9));
        int eos = reference[0].TokenIds[2];
        var p = SamplingParams.Greedy(9) with { StopTokenIds = [eos] };
        var plain = new TokenGenerator(m, new GenerationOptions { CompactFinishedFraction = 1 }).Generate(prompts, p);
        var compacted = new TokenGenerator(m, new GenerationOptions { CompactFinishedFraction = 0.01, MaxBatchSize = 4 }).Generate(prompts, p);
        for (int b = 0; b < prompts.Length; b++)
        {
            Assert.Equal(plain[b].TokenIds, compacted[b].TokenIds);
            Assert.Equal(plain[b].FinishReason, compacted[b].FinishReason);
        }
    }

    [Fact]
    public void BadInputIsNamed()
    {
        var m = GenTestModels.Micro(28);
        var g = new TokenGenerator(m);
        Assert.Contains("prompt 1 is empty", Assert.Throws<ArgumentException>(() => g.Generate([[1, 2], []], SamplingParams.Greedy(2))).Message);
        Assert.Contains("prompt 0, position 1: token id 999", Assert.Throws<ArgumentException>(() => g.Generate([[1, 999]], SamplingParams.Greedy(2))).Message);
        Assert.Contains("Decoder", Assert.Throws<ArgumentException>(() => g.Generate([[1]], new SamplingParams(StopStrings: ["x"]))).Message);
        var spec = new TokenGenerator(m, new GenerationOptions { SpeculativeMtp = true });
        Assert.Contains("greedy", Assert.Throws<ArgumentException>(() => spec.Generate([[1]], new SamplingParams(Temperature: 1))).Message);
    }
}
