// model.fp8_min_dim (DeepSeekForCausalLM.SetPrecision's fp8MinDim): under FP8 only the linear layers and routed-expert
// sets at least that wide (the lesser of their two widths) run the FP8 recipe; the others compute as the bf16 model
// does. The widths below are worked out by hand from BuiltinModels.Micro (hidden 64, dense intermediate 128, expert
// intermediate 32, q_lora 32, kv_lora 32, 4 heads of qk 16 + 8 rope, v 16).
using PostTrain.Core.Model;
using static TorchSharp.torch;
using P = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Tests.Model;

public sealed class Fp8MinDimTests
{
    private static Dictionary<string, P> Modes(DeepSeekForCausalLM m) =>
        m.named_modules().Select(x => (x.name, mode: x.module switch
            {
                Linear l => l.Precision, Experts e => e.Precision, _ => (P?)null,
            }))
            .Where(x => x.mode is not null).ToDictionary(x => x.name, x => x.mode!.Value);

    [Fact]
    public void Only_layers_at_least_that_wide_run_fp8()
    {
        using var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.SetPrecision(P.Fp8, 33);
        var modes = Modes(m);
        string Names() => string.Join(", ", modes.Select(x => $"{x.Key}={x.Value}"));
        // (name, in -> out): expected
        var expected = new (string Name, P Mode)[]
        {
            ("model.layers.0.self_attn.q_a_proj", P.Fp32),            // 64 -> 32
            ("model.layers.0.self_attn.q_b_proj", P.Fp32),            // 32 -> 4 x 24 = 96
            ("model.layers.0.self_attn.kv_a_proj_with_mqa", P.Fp8),   // 64 -> 32 + 8 = 40
            ("model.layers.0.self_attn.kv_b_proj", P.Fp32),           // 32 -> 4 x (16 + 16) = 128
            ("model.layers.0.self_attn.o_proj", P.Fp8),               // 64 -> 64
            ("model.layers.0.mlp.gate_proj", P.Fp8),                  // 64 -> 128 (dense layer)
            ("model.layers.0.mlp.down_proj", P.Fp8),                  // 128 -> 64
            ("model.layers.1.mlp.experts", P.Fp32),                   // hidden 64, intermediate 32
            ("model.layers.1.mlp.shared_experts.gate_proj", P.Fp32),  // 64 -> 32
        };
        foreach (var (name, mode) in expected)
        {
            Assert.True(modes.ContainsKey(name), $"{name} not among: {Names()}");
            Assert.True(modes[name] == mode, $"{name}: {modes[name]}, expected {mode}");
        }
        Assert.Equal(33, m.Fp8MinDim);
        var (fp8, other) = m.Fp8Layers();
        Assert.Equal(modes.Count(x => x.Value == P.Fp8), fp8);
        Assert.Equal(modes.Count, fp8 + other);

        m.SetPrecision(P.Fp8);                                          // 0: every layer, the V3 recipe
        Assert.All(Modes(m), x => Assert.Equal(P.Fp8, x.Value));
        m.SetPrecision(P.Bf16, 33);                                     // no effect outside fp8
        Assert.All(Modes(m), x => Assert.Equal(P.Fp32, x.Value));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.SetPrecision(P.Fp8, -1));
    }

    [Fact]
    public void With_every_layer_narrower_the_fp8_model_computes_exactly_as_bf16_and_not_otherwise()
    {
        using var fp8 = new DeepSeekForCausalLM(BuiltinModels.Micro());
        fp8.InitWeights(0.05, 3);
        using var bf16 = new DeepSeekForCausalLM(BuiltinModels.Micro());
        bf16.load_state_dict(fp8.state_dict());
        bf16.SetPrecision(P.Bf16);
        var ids = tensor(new long[] { 5, 17, 200, 3, 99, 41, 7, 250 }).reshape(1, 8);
        using var _ = no_grad();
        var want = bf16.forward(ids);

        fp8.SetPrecision(P.Fp8, 1 << 20);
        Assert.Equal((0, Modes(fp8).Count), fp8.Fp8Layers());
        var same = fp8.forward(ids);
        Assert.True((same == want).all().item<bool>(), "all layers filtered out: the bf16 forward bit for bit");

        fp8.SetPrecision(P.Fp8, 64);                                    // o_proj and the dense MLP in FP8
        var mixed = fp8.forward(ids);
        Assert.False((mixed == want).all().item<bool>(), "layers of width >= 64 quantise");
        double rel = ((mixed.to(ScalarType.Float32) - want.to(ScalarType.Float32)).norm() / want.to(ScalarType.Float32).norm()).item<float>();
        Assert.True(rel < 0.05, $"FP8 in a few layers stays close to bf16: relative difference {rel}");
    }
}
