// LoRA scopes: with the adapters off the model computes exactly what the base model computes (GRPO's reference policy
// without a second copy), and with the adapters merged it computes what base + adapter computes, its base weights
// restored bit for bit afterwards.
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

public sealed class LoraScopesTests
{
    private static readonly string[] Targets = [.. LoraSettings.AttentionModules, "gate_proj", "up_proj", "down_proj"];

    // Weights from a local generator (the global torch RNG is shared with test classes running in parallel).
    internal static DeepSeekForCausalLM Micro()
    {
        var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        var gen = new Generator(5);
        using (no_grad())
            foreach (var (name, p) in m.named_parameters())
                if (name.Contains("norm")) p.fill_(1.0); else p.normal_(0, 0.2, generator: gen);
        foreach (var moe in m.MoeLayers()) moe.Gate.CorrectionBias?.zero_();
        m.eval();
        return m;
    }

    [Fact]
    public void Disabled_adapters_compute_the_base_model_and_merged_ones_the_adapted_model()
    {
        using var baseModel = Micro();
        using var m = Micro();
        using var lora = LoraAdapters.Attach(m, new LoraSettings(4, 8, 0, Targets), seed: 1);
        using (no_grad())
            foreach (var (_, a) in lora.Entries) a.B.normal_(0, 0.3, generator: new Generator(9));   // non-zero adapters
        var before = m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var ids = tensor(new long[] { 3, 17, 99, 4, 250, 8, 61, 2 }).reshape(2, 4);
        using var _ = no_grad();
        var plain = baseModel.forward(ids);
        var adapted = m.forward(ids);
        Assert.False(adapted.allclose(plain, rtol: 0, atol: 1e-3), "the adapters change the output");

        Tensor off;
        using (lora.Disabled()) off = m.forward(ids);
        Assert.True(off.eq(plain).all().item<bool>(), "adapters off == the base model, exactly");
        Assert.True(m.forward(ids).eq(adapted).all().item<bool>(), "the adapters are back after the scope");

        Tensor merged;
        using (lora.Merged()) merged = m.forward(ids);
        Assert.True(merged.allclose(adapted, rtol: 1e-4, atol: 1e-5), $"merged == base + adapter: max diff {(merged - adapted).abs().max().item<float>()}");
        foreach (var (name, t) in m.state_dict())
            Assert.True(t.eq(before[name]).all().item<bool>(), $"{name} restored bit for bit");
        Assert.True(m.forward(ids).eq(adapted).all().item<bool>());
    }
}
