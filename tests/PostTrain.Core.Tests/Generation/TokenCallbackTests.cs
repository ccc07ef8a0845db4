// The optional per-token callback (streaming): it sees exactly the tokens and log-probs the results hold, in order,
// does not change them, and returning false ends only that row.
using PostTrain.Core.Generation;

namespace PostTrain.Core.Tests.Generation;

public sealed class TokenCallbackTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CallbackSeesEveryTokenInOrderAndChangesNothing(bool speculative)
    {
        var m = GenTestModels.Micro(31);
        var prompts = GenTestModels.Prompts(7, 3, 6, 2);
        var p = speculative ? SamplingParams.Greedy(9) : new SamplingParams(Temperature: 0.8, MaxNewTokens: 9, Seed: 5);
        var g = new TokenGenerator(m, new GenerationOptions { SpeculativeMtp = speculative });
        var plain = g.Generate(prompts, p);
        var seen = prompts.Select(_ => (Tokens: new List<int>(), LogProbs: new List<float>())).ToArray();
        var withCallback = g.Generate(prompts, p, (row, tok, lp) => { seen[row].Tokens.Add(tok); seen[row].LogProbs.Add(lp); return true; });
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(plain[i].TokenIds, withCallback[i].TokenIds);
            Assert.Equal(plain[i].LogProbs, withCallback[i].LogProbs);
            Assert.Equal(plain[i].FinishReason, withCallback[i].FinishReason);
            Assert.Equal(plain[i].TokenIds, seen[i].Tokens);
            Assert.Equal(plain[i].LogProbs, seen[i].LogProbs);
        }
    }

    [Fact]
    public void ReturningFalseEndsOnlyThatRow()
    {
        var m = GenTestModels.Micro(32);
        var prompts = GenTestModels.Prompts(8, 4, 5, 3);
        var p = SamplingParams.Greedy(10) with { StopTokenIds = [] };
        var g = new TokenGenerator(m);
        var plain = g.Generate(prompts, p);
        int calls = 0;
        var cut = g.Generate(prompts, p, (row, tok, lp) => { calls++; return !(row == 1 && tok == plain[1].TokenIds[2]); });
        int firstHit = Array.IndexOf(plain[1].TokenIds, plain[1].TokenIds[2]);   // the callback ends row 1 at that token's first occurrence
        Assert.Equal(plain[1].TokenIds[..(firstHit + 1)], cut[1].TokenIds);
        Assert.Equal(FinishReason.Stop, cut[1].FinishReason);
        Assert.Equal(plain[0].TokenIds, cut[0].TokenIds);
        Assert.Equal(plain[2].TokenIds, cut[2].TokenIds);
        Assert.Equal(FinishReason.Length, cut[0].FinishReason);
        Assert.Equal(10 + 10 + firstHit + 1, calls);
    }
}
