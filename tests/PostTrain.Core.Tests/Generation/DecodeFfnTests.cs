// The decode path's feed-forward half accumulates into the block's residual in place. Its all-experts MoE (small token
// counts) runs the shared experts as extra experts of weight 1 inside the routed GEMMs (stacked copy), or reads large
// expert weights in place (a 16B model's copies would take 29 GB); a dense MLP is one such expert. Every form gives
// residual + the module's own forward (the MoE's grouped forward, the MLP's), in fp32 on the CPU, with one or two
// shared experts, and writes the result into the residual's storage.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

public sealed class DecodeFfnTests
{
    private static DeepSeekForCausalLM Model(int shared)
    {
        var m = new DeepSeekForCausalLM(BuiltinModels.Micro() with { NSharedExperts = shared });
        m.InitWeights(0.2, 5);
        m.eval();
        return m;
    }

    private static Tensor Residual(long hidden) => randn(new long[] { 3, 4, hidden }, generator: new Generator(9));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void All_experts_stacked_and_in_place_add_the_grouped_forward_to_the_residual(int shared)
    {
        using var m = Model(shared);
        var moe = m.MoeLayers().First() as MoE ?? throw new InvalidOperationException("Micro has an MoE layer");
        Assert.Equal(shared * m.Config.MoeIntermediateSize, moe.SharedExperts!.GateProj.Weight.shape[0]);
        var x = randn(new long[] { 3, 4, m.Config.HiddenSize }, generator: new Generator(3));
        using var _ = no_grad();
        var expected = Residual(m.Config.HiddenSize) + moe.forward(x);
        Tensor stacked, inPlace;
        var r1 = Residual(m.Config.HiddenSize);
        using (var w = new InferenceWeights(ScalarType.Float32)) stacked = DecodeFfn.AllExperts(moe, w, m.Config, x, r1);
        long saved = DecodeFfn.StackedCopyMaxBytes;
        try
        {
            DecodeFfn.StackedCopyMaxBytes = 0;
            using var w = new InferenceWeights(ScalarType.Float32);
            inPlace = DecodeFfn.AllExperts(moe, w, m.Config, x, Residual(m.Config.HiddenSize));
        }
        finally { DecodeFfn.StackedCopyMaxBytes = saved; }
        Assert.True((stacked - expected).abs().max().item<float>() < 1e-5, "stacked (shared experts inside) vs residual + grouped forward");
        Assert.True((inPlace - expected).abs().max().item<float>() < 1e-5, "in place vs residual + grouped forward");
        Assert.True((r1 - stacked).abs().max().item<float>() == 0, "the result is in the residual's storage");
        Assert.True((expected - Residual(m.Config.HiddenSize)).abs().max().item<float>() > 1e-3, "the experts contribute");
    }

    [Fact]
    public void A_dense_mlp_adds_its_forward_to_the_residual()
    {
        using var m = Model(1);
        var mlp = m.Model.Layers[0].Ffn as Mlp ?? throw new InvalidOperationException("Micro's first layer is dense");
        var x = randn(new long[] { 3, 4, m.Config.HiddenSize }, generator: new Generator(4));
        using var _ = no_grad();
        var expected = Residual(m.Config.HiddenSize) + mlp.forward(x);
        var r = Residual(m.Config.HiddenSize);
        using var w = new InferenceWeights(ScalarType.Float32);
        var y = DecodeFfn.Dense(mlp, w, x, r);
        Assert.True((y - expected).abs().max().item<float>() < 1e-5, "residual + mlp(x)");
        Assert.True((r - y).abs().max().item<float>() == 0, "the result is in the residual's storage");
    }
}
