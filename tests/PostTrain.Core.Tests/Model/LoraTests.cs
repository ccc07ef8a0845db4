// LoRA adapters on the core model: PEFT's key names and shapes for DeepSeek-V3 modules (approval list written by hand
// from the Micro config), a new adapter changes nothing, the folded model computes what base + adapter computes,
// training touches only the adapters, and the PEFT directory round-trips.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

public sealed class LoraTests
{
    private static readonly string[] AttentionAndMlp = [.. LoraSettings.AttentionModules, "gate_proj", "up_proj", "down_proj"];

    private static DeepSeekForCausalLM Micro(long seed = 5)
    {
        var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.InitWeights(0.2, seed);
        m.eval();
        return m;
    }

    [Fact]
    public void Peft_key_names_and_shapes_for_deepseek_v3_modules()
    {
        using var m = Micro();
        using var lora = LoraAdapters.Attach(m, new LoraSettings(4, 8, 0, AttentionAndMlp), seed: 1);
        // Micro: hidden 64, q_lora 32, 4 heads x (16 nope + 8 rope), kv_lora 32, v 16; layer 0 dense MLP (128), layer 1
        // MoE with one shared expert (32); routed experts and the MTP module get no adapters
        var expected = new Dictionary<string, long[]>();
        void Add(string module, long inF, long outF)
        {
            expected[$"base_model.model.{module}.lora_A.weight"] = [4, inF];
            expected[$"base_model.model.{module}.lora_B.weight"] = [outF, 4];
        }
        for (int l = 0; l < 2; l++)
        {
            string a = $"model.layers.{l}.self_attn";
            Add($"{a}.q_a_proj", 64, 32); Add($"{a}.q_b_proj", 32, 96); Add($"{a}.kv_a_proj_with_mqa", 64, 40);
            Add($"{a}.kv_b_proj", 32, 128); Add($"{a}.o_proj", 64, 64);
        }
        Add("model.layers.0.mlp.gate_proj", 64, 128); Add("model.layers.0.mlp.up_proj", 64, 128); Add("model.layers.0.mlp.down_proj", 128, 64);
        Add("model.layers.1.mlp.shared_experts.gate_proj", 64, 32); Add("model.layers.1.mlp.shared_experts.up_proj", 64, 32);
        Add("model.layers.1.mlp.shared_experts.down_proj", 32, 64);
        var state = lora.PeftStateDict();
        Assert.Equal(expected.Keys.Order(), state.Keys.Order());
        foreach (var (k, shape) in expected) Assert.Equal(shape, state[k].shape);
    }

    [Fact]
    public void A_new_adapter_changes_nothing_and_the_folded_model_equals_base_plus_adapter()
    {
        using var m = Micro();
        var ids = tensor(new long[] { 5, 17, 99, 3, 250, 8, 41 }).view(1, -1);
        using var _ = no_grad();
        var baseLogits = m.Forward(ids).Logits.clone();
        var lora = LoraAdapters.Attach(m, new LoraSettings(4, 8, 0.1, AttentionAndMlp), seed: 2);
        lora.eval();
        Assert.Equal(0, (m.Forward(ids).Logits - baseLogits).abs().max().item<float>());   // B = 0
        foreach (var (_, a) in lora.Entries) a.B.normal_(0, 0.05, generator: new TorchSharp.torch.Generator(7));
        var adapted = m.Forward(ids).Logits.clone();
        Assert.True((adapted - baseLogits).abs().max().item<float>() > 1e-3);           // the adapter does something

        // independent reference: a second copy of the base with W + (alpha / r) B A written in by hand
        using var reference = Micro();
        var layers = reference.named_modules().Where(x => x.module is Linear).ToDictionary(x => x.name, x => (Linear)x.module);
        foreach (var (path, a) in lora.Entries) layers[path].Weight.add_(matmul(a.B, a.A) * 2.0);   // alpha 8 / rank 4
        Assert.True((reference.Forward(ids).Logits - adapted).abs().max().item<float>() < 1e-5);

        lora.Fold();
        Assert.True((m.Forward(ids).Logits - adapted).abs().max().item<float>() < 1e-5);
        Assert.All(layers.Keys, k => Assert.Null(((Linear)m.named_modules().First(x => x.name == k).module).Lora));
    }

    [Fact]
    public void Training_the_adapters_changes_only_the_adapters_and_the_peft_directory_round_trips()
    {
        using var m = Micro();
        var before = m.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var lora = LoraAdapters.Attach(m, new LoraSettings(4, 8, 0, LoraSettings.AttentionModules), seed: 3);
        lora.train();
        using var opt = new AdamW(lora.named_parameters().Select(p => (p.name, p.parameter)), lr: 0.01);
        var ids = tensor(Enumerable.Range(0, 32).Select(i => (long)(i * 7 % 200 + 1)).ToArray()).view(1, -1);
        var labels = cat([ids.narrow(1, 1, 31), full(1, 1, -100L, dtype: ScalarType.Int64)], 1);
        double first = 0, last = 0;
        for (int step = 0; step < 15; step++)
        {
            using var scope = NewDisposeScope();
            opt.ZeroGrad();
            var (sum, count) = Losses.CrossEntropySum(m.Forward(ids).Logits, labels);
            var loss = sum / count;
            loss.backward();
            opt.Step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < first - 0.1, $"loss {first} -> {last}");
        foreach (var (name, p) in m.named_parameters()) Assert.True(p.detach().eq(before[name]).all().item<bool>(), $"{name} changed");

        string dir = Path.Combine(Path.GetTempPath(), "posttrain-lora-" + Guid.NewGuid().ToString("N"));
        try
        {
            PeftAdapterFiles.Save(dir, lora, "/models/base", new Dictionary<string, string> { ["tokenizer_config.json"] = "{}" });
            var (settings, baseModel) = PeftAdapterFiles.ReadConfig(dir);
            Assert.Equal("/models/base", baseModel);
            Assert.Equal((4, 8.0, 0.0), (settings.Rank, settings.Alpha, settings.Dropout));
            Assert.Equal(LoraSettings.AttentionModules, settings.TargetModules);
            Assert.True(File.Exists(Path.Combine(dir, "tokenizer_config.json")));
            using var m2 = Micro();
            using var lora2 = LoraAdapters.Attach(m2, settings, seed: 99);
            PeftAdapterFiles.LoadWeights(dir, lora2);
            foreach (var ((_, a), (_, b)) in lora.Entries.Zip(lora2.Entries))
            {
                Assert.True(a.A.eq(b.A).all().item<bool>());
                Assert.True(a.B.eq(b.B).all().item<bool>());
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
