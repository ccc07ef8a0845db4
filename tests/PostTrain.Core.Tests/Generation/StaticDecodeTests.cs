// The static-shape decode step (the form CUDA graphs capture; run eagerly here) against plain eager decoding, and the
// device-step random numbers it samples with against the host-step ones.
using PostTrain.Core.Generation;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

public sealed class StaticDecodeTests
{
    static readonly int[] Lengths = [3, 7, 5, 1, 6];

    [Theory]
    [InlineData(0L)]
    [InlineData(42L)]
    [InlineData(-7L)]
    [InlineData(0x1234_5678_9ABCL)]
    public void DeviceStepUniformsEqualHostStepUniforms(long seed)
    {
        var keys = tensor(new long[] { 0, 1, 5, 1_000_003 });
        foreach (long step in new long[] { 0, 1, 2, 255, 70_000 })
        {
            var host = CounterRng.Uniform(seed, keys, step, 300).data<float>().ToArray();
            var dev = CounterRng.Uniform(seed, keys, tensor(new[] { step }), 300).data<float>().ToArray();
            Assert.Equal(host, dev);
            Assert.Equal(CounterRng.UniformHost(seed, 5, step, 17), host[2 * 300 + 17]);
        }
    }

    [Fact]
    public void GreedyStaticStepEqualsEager()
    {
        var m = GenTestModels.Micro(31);
        var prompts = GenTestModels.Prompts(8, Lengths);
        AssertSame(m, prompts, SamplingParams.Greedy(9), compact: 0.25);
    }

    [Fact]
    public void SampledStaticStepEqualsEagerWithFiltersAndSeed()
    {
        var m = GenTestModels.Micro(32, std: 0.05);
        var prompts = GenTestModels.Prompts(9, Lengths);
        AssertSame(m, prompts, new SamplingParams(Temperature: 0.8, TopK: 40, TopP: 0.9, MaxNewTokens: 9, Seed: 5), compact: 0.25);
    }

    [Fact]
    public void StopsAndCompactionGiveTheSameRows()
    {
        var m = GenTestModels.Micro(33);
        var prompts = GenTestModels.Prompts(10, Lengths);
        var free = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(10) with { StopTokenIds = [] });
        // stop tokens that end rows 0 and 2 early (at their 3rd and 5th token) so the batch compacts mid-decode
        var p = SamplingParams.Greedy(10) with { StopTokenIds = [free[0].TokenIds[2], free[2].TokenIds[4]] };
        var (eager, stat) = AssertSame(m, prompts, p, compact: 0.01);
        Assert.Contains(eager, r => r.FinishReason == FinishReason.Stop);
        Assert.Contains(eager, r => r.TokenIds.Length < 10);
        Assert.Equal("static", stat.DecodeMode);
    }

    [Fact]
    public void CudaGraphsOnWithoutCudaIsAClearError()
    {
        var m = GenTestModels.Micro(34);
        var g = new TokenGenerator(m, new GenerationOptions { CudaGraphs = CudaGraphMode.On });
        var e = Assert.Throws<ArgumentException>(() => g.Generate(GenTestModels.Prompts(1, 3), SamplingParams.Greedy(2)));
        Assert.Contains("CudaGraphs = On needs a CUDA device", e.Message);
    }

    [Fact]
    public void AutoOnCpuDecodesEagerly()
    {
        var m = GenTestModels.Micro(35);
        var g = new TokenGenerator(m);
        g.Generate(GenTestModels.Prompts(1, 3), SamplingParams.Greedy(3));
        Assert.Equal("eager", g.LastStats.DecodeMode);
    }

    private static (IReadOnlyList<GenerationResult> Eager, GenerationStats Static) AssertSame(
        Core.Model.DeepSeekForCausalLM m, int[][] prompts, SamplingParams p, double compact)
    {
        var eagerGen = new TokenGenerator(m, new GenerationOptions { CompactFinishedFraction = compact });
        var staticGen = new TokenGenerator(m, new GenerationOptions { CompactFinishedFraction = compact, StaticDecodeStep = true });
        var eager = eagerGen.Generate(prompts, p);
        var stat = staticGen.Generate(prompts, p);
        Assert.Equal("eager", eagerGen.LastStats.DecodeMode);
        Assert.Equal("static", staticGen.LastStats.DecodeMode);
        Assert.Equal(eagerGen.LastStats.DecodeSteps, staticGen.LastStats.DecodeSteps);
        for (int b = 0; b < prompts.Length; b++)
        {
            Assert.Equal(eager[b].TokenIds, stat[b].TokenIds);
            Assert.Equal(eager[b].FinishReason, stat[b].FinishReason);
            for (int t = 0; t < eager[b].LogProbs.Length; t++)
                Assert.True(Math.Abs(eager[b].LogProbs[t] - stat[b].LogProbs[t]) < 1e-5,
                    $"row {b} token {t}: {stat[b].LogProbs[t]} vs {eager[b].LogProbs[t]}");
        }
        return (eager, staticGen.LastStats);
    }
}
