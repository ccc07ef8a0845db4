// The training fast path (FastTrainStep, run eagerly on the CPU exactly as it is captured on CUDA: chunked head loss,
// fused AdamW, padded attention) with activation recompute against the same step without: fp32 losses over 6 steps
// equal to 1e-6 relative and the weights afterwards to 1e-5 relative L2, on the micro MoE model with packed segments.
using PostTrain.Core.FastPath;
using PostTrain.Core.Model;
using PostTrain.Core.Recompute;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Core.Tests.Recompute;

public sealed class RecomputeFastStepTests
{
    private static (List<double> Losses, DeepSeekForCausalLM Model) Run(RecomputeMode mode)
    {
        const int B = 2, T = 12;
        var m = new DeepSeekForCausalLM(BuiltinModels.Micro(50) with { NumNextnPredictLayers = 0 });
        m.InitWeights(0.05, 11);
        m.train();
        m.Recompute = mode;
        foreach (var moe in m.MoeLayers()) moe.BalanceAlpha = 0.01;
        var opt = new AdamW(m.named_parameters().Select(p => (p.name, p.parameter)), 1e-2, weightDecay: 0.01, fused: true);
        using var step = FastTrainStep.Create(m, opt, B, T, packed: true, FastPathMode.Auto, new FastTrainStepOptions { MaxGradNorm = 0.5 });
        var gen = new Generator(17);
        var seg = tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2 }).view(B, T);
        var losses = new List<double>();
        for (int s = 0; s < 6; s++)
        {
            var ids = randint(0, 50, [B, T], generator: gen);
            var labels = randint(0, 50, [B, T], generator: gen);
            var r = step.Step(ids, labels, null, seg, 1e-2);
            losses.Add(r.Loss.item<float>());
            MoeBalancer.Step(m, 0.001);
        }
        return (losses, m);
    }

    [Theory]
    [InlineData(RecomputeMode.Selective)]
    [InlineData(RecomputeMode.Layer)]
    public void Fast_step_with_recompute_equals_the_fast_step_without(RecomputeMode mode)
    {
        var (plain, a) = Run(RecomputeMode.None);
        var (other, b) = Run(mode);
        for (int s = 0; s < plain.Count; s++)
            Assert.True(Math.Abs(plain[s] - other[s]) <= 1e-6 * Math.Abs(plain[s]), $"step {s + 1}: loss {other[s]:R}, without recompute {plain[s]:R}");
        double num = 0, den = 0;
        foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
        {
            num += (pa - pb).pow(2).sum().item<float>();
            den += pa.pow(2).sum().item<float>();
        }
        Assert.True(Math.Sqrt(num / den) < 1e-5, $"weights differ by {Math.Sqrt(num / den):E3} (relative L2)");
        a.Dispose();
        b.Dispose();
    }
}
