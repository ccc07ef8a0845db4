// The decode path's all-experts MoE (small token counts) reads large expert weights in place instead of through a
// stacked copy (a 16B model's copies would take 29 GB): both forms give the routed sum, and equal the MoE's own
// grouped forward, in fp32 on the CPU.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

public sealed class DecodeFfnTests
{
    [Fact]
    public void All_experts_in_place_equals_the_stacked_copy_and_the_grouped_forward()
    {
        using var m = GenTestModels.Micro(seed: 5);
        var moe = m.MoeLayers().First() as MoE ?? throw new InvalidOperationException("Micro has an MoE layer");
        var x = randn(new long[] { 3, 4, m.Config.HiddenSize }, generator: new Generator(3));
        using var _ = no_grad();
        Tensor stacked, inPlace;
        using (var w = new InferenceWeights(ScalarType.Float32)) stacked = DecodeFfn.AllExperts(moe, w, m.Config, x);
        long saved = DecodeFfn.StackedCopyMaxBytes;
        try
        {
            DecodeFfn.StackedCopyMaxBytes = 0;
            using var w = new InferenceWeights(ScalarType.Float32);
            inPlace = DecodeFfn.AllExperts(moe, w, m.Config, x);
        }
        finally { DecodeFfn.StackedCopyMaxBytes = saved; }
        var grouped = moe.forward(x);
        Assert.True((inPlace - stacked).abs().max().item<float>() < 1e-5, "in place vs stacked copy");
        Assert.True((inPlace - grouped).abs().max().item<float>() < 1e-5, "in place vs the grouped forward");
        Assert.True(inPlace.abs().max().item<float>() > 1e-3, "the experts contribute");
    }
}
