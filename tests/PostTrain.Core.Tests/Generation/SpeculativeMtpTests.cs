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
}
