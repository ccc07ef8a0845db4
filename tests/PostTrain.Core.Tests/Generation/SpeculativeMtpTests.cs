// MTP speculative greedy decoding (the static-shape step that CUDA graphs capture, run eagerly on the CPU) against
// plain greedy decoding, and its acceptance counters against a count simulated from a plain greedy run and the MTP
// head's drafts taken from the model's own full forward.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

public sealed class SpeculativeMtpTests
{
    /// <summary>A random model whose MTP module is a good drafter: the main model's residual branches are scaled down
    /// (so the next token depends mostly on the current one) and the MTP block passes the embedding of the next token
    /// through (so it predicts what the main model will say after it). Drafts are then often, not always, right.</summary>
    internal static DeepSeekForCausalLM DraftFriendly(long seed, double residualScale)
    {
        var m = GenTestModels.Micro(seed);
        using var _ = no_grad();
        foreach (var (name, p) in m.named_parameters())
        {
            bool residualOut = name.EndsWith("o_proj.weight") || name.Contains("down_proj");
            if (name.StartsWith("model.layers.") && residualOut) p.mul_(residualScale);
            if (name.StartsWith("mtp.0.") && residualOut) p.zero_();
        }
        var eh = m.named_parameters().First(p => p.name == "mtp.0.eh_proj.weight").parameter;   // (H, 2H)
        long H = eh.shape[0];
        eh.zero_();
        eh.narrow(1, 0, H).copy_(eye(H));                                            // x = enorm(emb(next token))
        return m;
    }

    [Theory]
    [InlineData(0.02, 31)]   // about half the drafts accepted
    [InlineData(0.05, 32)]   // about one in eight
    public void SpeculativeGreedyEqualsPlainGreedy(double residualScale, long seed)
    {
        var m = DraftFriendly(seed, residualScale);
        var prompts = GenTestModels.Prompts((int)seed, 3, 7, 5, 1, 9);
        var plain = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(14));
        var specGen = new TokenGenerator(m, new GenerationOptions { SpeculativeMtp = true, CompactFinishedFraction = 1 });
        var spec = specGen.Generate(prompts, SamplingParams.Greedy(14));
        for (int b = 0; b < prompts.Length; b++)
        {
            Assert.Equal(plain[b].TokenIds, spec[b].TokenIds);
            Assert.Equal(FinishReason.Length, spec[b].FinishReason);
            for (int t = 0; t < 14; t++) Assert.True(Math.Abs(plain[b].LogProbs[t] - spec[b].LogProbs[t]) < 1e-4, $"row {b} token {t}");
        }
        var s = specGen.LastStats;
        Assert.True(s.DraftsAccepted > 0 && s.DraftsAccepted < s.DraftsProposed,
            $"the test needs both accepted and rejected drafts: {s.DraftsAccepted}/{s.DraftsProposed}");
        Assert.Equal(prompts.Length * 14L, s.GeneratedTokens);
    }

    [Fact]
    public void PerfectDrafterIsAlwaysAcceptedAndHalvesTheSteps()
    {
        var m = DraftFriendly(35, 0);                                                // main model: next = f(current token)
        var prompts = GenTestModels.Prompts(14, 3, 7, 5);
        var plain = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(14));
        var g = new TokenGenerator(m, new GenerationOptions { SpeculativeMtp = true });
        var spec = g.Generate(prompts, SamplingParams.Greedy(14));
        for (int b = 0; b < prompts.Length; b++) Assert.Equal(plain[b].TokenIds, spec[b].TokenIds);
        Assert.Equal(1.0, g.LastStats.AcceptanceRate);
        Assert.Equal(7, g.LastStats.DecodeSteps);                                    // 1 token from prefill + 2 per step
    }

    [Fact]
    public void SpeculativeGreedyEqualsPlainGreedyOnARandomModelWithStopsAndCompaction()
    {
        var m = GenTestModels.Micro(33);
        var prompts = GenTestModels.Prompts(12, 2, 6, 4, 8);
        var free = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(10));
        var p = SamplingParams.Greedy(10) with { StopTokenIds = [free[0].TokenIds[4], free[3].TokenIds[1]] };
        var plain = new TokenGenerator(m).Generate(prompts, p);
        var spec = new TokenGenerator(m, new GenerationOptions { SpeculativeMtp = true, CompactFinishedFraction = 0.01 }).Generate(prompts, p);
        for (int b = 0; b < prompts.Length; b++)
        {
            Assert.Equal(plain[b].TokenIds, spec[b].TokenIds);
            Assert.Equal(plain[b].FinishReason, spec[b].FinishReason);
            Assert.Equal(plain[b].StopTokenId, spec[b].StopTokenId);
        }
    }

    [Fact]
    public void StopTokenInsideAnAcceptedPairEndsTheSequenceThere()
    {
        var m = DraftFriendly(34, 0);                                                // every draft accepted: tokens come in pairs
        var prompts = GenTestModels.Prompts(13, 4, 6);
        var free = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(12));
        var p = SamplingParams.Greedy(12) with { StopTokenIds = [free[1].TokenIds[5]] };
        var plain = new TokenGenerator(m).Generate(prompts, p);
        var spec = new TokenGenerator(m, new GenerationOptions { SpeculativeMtp = true }).Generate(prompts, p);
        for (int b = 0; b < prompts.Length; b++) Assert.Equal(plain[b].TokenIds, spec[b].TokenIds);
        Assert.Equal(FinishReason.Stop, spec[1].FinishReason);
    }

    /// <summary>Prompts of lengths 1..11 (left padding), batch 5, odd and even limits, rows ended early by stop tokens
    /// at different steps, with and without compaction, in one chunk and in chunks of 2.</summary>
    [Theory]
    [InlineData(9, 0.01, 256)]
    [InlineData(12, 1.0, 256)]
    [InlineData(13, 0.25, 2)]
    [InlineData(1, 0.25, 256)]
    public void StaticSpeculativeStepEqualsPlainGreedyWithStopsAtDifferentSteps(int maxNew, double compact, int maxBatch)
    {
        var m = DraftFriendly(36, 0.02);
        var prompts = GenTestModels.Prompts(15, 4, 1, 11, 6, 3);
        var free = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(maxNew) with { StopTokenIds = [] });
        // stop tokens that end row 0 at its 3rd token and row 3 at its 6th (or earlier, where the token comes sooner)
        int[] stops = maxNew > 6 ? [free[0].TokenIds[2], free[3].TokenIds[5]] : [];
        var p = SamplingParams.Greedy(maxNew) with { StopTokenIds = stops };
        var plain = new TokenGenerator(m).Generate(prompts, p);
        var g = new TokenGenerator(m, new GenerationOptions { SpeculativeMtp = true, CompactFinishedFraction = compact, MaxBatchSize = maxBatch });
        var spec = g.Generate(prompts, p);
        for (int b = 0; b < prompts.Length; b++)
        {
            Assert.Equal(plain[b].TokenIds, spec[b].TokenIds);
            Assert.Equal(plain[b].FinishReason, spec[b].FinishReason);
            Assert.Equal(plain[b].StopTokenId, spec[b].StopTokenId);
            for (int t = 0; t < plain[b].LogProbs.Length; t++)
                Assert.True(Math.Abs(plain[b].LogProbs[t] - spec[b].LogProbs[t]) < 1e-4, $"row {b} token {t}");
        }
        if (maxNew > 6)
        {
            var lengths = plain.Select(r => r.TokenIds.Length).Distinct().Count();
            Assert.True(lengths >= 3, $"the test needs rows that end at different steps ({lengths} distinct lengths)");
        }
        Assert.Equal(maxNew == 1 ? "eager" : "mtp-static", g.LastStats.DecodeMode);
    }

    /// <summary>DraftsProposed/DraftsAccepted/DecodeSteps equal a simulation of the speculative schedule over the plain
    /// greedy completion, with each draft read from the MTP logits of the model's full (uncached) forward.</summary>
    [Theory]
    [InlineData(0.02, 37, 16, 1.0)]    // finished rows stay in the batch (their drafts must not count)
    [InlineData(0.05, 38, 11, 0.25)]
    public void AcceptanceCountsEqualAnIndependentSimulation(double residualScale, long seed, int maxNew, double compact)
    {
        var m = DraftFriendly(seed, residualScale);
        var prompts = GenTestModels.Prompts((int)seed, 5, 2, 8, 3);
        var free = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(maxNew) with { StopTokenIds = [] });
        var p = SamplingParams.Greedy(maxNew) with { StopTokenIds = [free[2].TokenIds[6]] };
        var plain = new TokenGenerator(m).Generate(prompts, p);
        var g = new TokenGenerator(m, new GenerationOptions { SpeculativeMtp = true, CompactFinishedFraction = compact });
        g.Generate(prompts, p);

        long proposed = 0, accepted = 0;
        int steps = 0;
        for (int b = 0; b < prompts.Length; b++)
        {
            var (rp, ra, rs) = SimulateSchedule(m, prompts[b], plain[b].TokenIds);
            proposed += rp;
            accepted += ra;
            steps = Math.Max(steps, rs);
        }
        var s = g.LastStats;
        Assert.True(accepted > 0 && accepted < proposed, $"the test needs accepted and rejected drafts: {accepted}/{proposed}");
        Assert.Equal(proposed, s.DraftsProposed);
        Assert.Equal(accepted, s.DraftsAccepted);
        Assert.Equal(steps, s.DecodeSteps);
        Assert.Equal((double)accepted / proposed, s.AcceptanceRate);
    }

    /// <summary>The speculative schedule of one row whose greedy completion is known: the token at position q is pending
    /// with a draft for q + 1 (the MTP logits at q - 1, fed the token at q); a step emits the token at q + 1 and, when
    /// the draft equals it, also the one at q + 2. Returns (drafts proposed, accepted, steps).</summary>
    private static (long Proposed, long Accepted, int Steps) SimulateSchedule(DeepSeekForCausalLM m, int[] prompt, int[] completion)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var seq = prompt.Concat(completion).ToArray();
        var mtp = m.Forward(tensor(seq.Select(i => (long)i).ToArray()).view(1, -1), computeMtp: true).MtpLogits[0][0];   // (T-1, V)
        var draftAt = mtp.argmax(-1).data<long>().ToArray();                      // draftAt[t]: draft for position t + 2
        int L = prompt.Length, n = completion.Length, emitted = 1, q = L, steps = 0;
        long proposed = 0, accepted = 0;
        while (emitted < n)
        {
            steps++;
            proposed++;
            bool ok = draftAt[q - 1] == seq[q + 1];
            emitted++;
            if (ok)
            {
                accepted++;
                if (emitted < n) emitted++;
            }
            q += ok ? 2 : 1;
        }
        return (proposed, accepted, steps);
    }
}
