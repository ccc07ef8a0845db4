// PEFT's transformers-5 layout for the routed experts (PeftLayout.FusedExperts) on the Micro model (4 experts, hidden 64,
// expert width 32, dense MLP 128, one shared expert 32): key names, shapes and adapter_config.json written out by hand
// from peft's ParamWrapper (A (r*E, in), B (out, r*E); gate_up_proj wrapped inside down_proj, rank 2r, alpha 2 alpha);
// the update peft computes for each expert from the fused tensors (its formula written again here, in fp64) equals
// PostTrain's per-projection update, and base + that update equals PostTrain's folded weights; save -> load round-trips
// in both layouts and across them; the refusals name the key at fault.
using System.Text.Json.Nodes;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Core.Tests.Checkpoints;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

public sealed class PeftFusedExpertsTests
{
    private const int E = 4, H = 64, I = 32, R = 4;
    private static readonly LoraSettings Fused = new(R, 8, 0.05, ["o_proj", "gate_proj", "up_proj", "down_proj"], RoutedExperts: true);
    private static readonly Tensor Ids = tensor(new long[] { 5, 17, 99, 3, 250, 8, 41, 7, 77, 120 }).view(2, -1);

    private static LoraAdapters Adapted(DeepSeekForCausalLM m, LoraSettings s)
    {
        var lora = LoraAdapters.Attach(m, s, seed: 1);
        var gen = new Generator(4);
        using var _ = no_grad();
        foreach (var (_, a) in lora.Entries) a.B.normal_(0, 0.2, generator: gen);
        foreach (var (_, _, a) in lora.ExpertEntries) a.B.normal_(0, 0.2, generator: gen);
        return lora;
    }

    [Fact]
    public void Fused_layout_key_names_shapes_and_adapter_config()
    {
        using var m = LoraScopesTests.Micro();
        using var lora = LoraAdapters.Attach(m, Fused, seed: 1);
        var expected = new Dictionary<string, long[]>();
        void Add(string module, long a0, long a1, long b0, long b1)
        {
            expected[$"base_model.model.model.layers.{module}.lora_A.weight"] = [a0, a1];
            expected[$"base_model.model.model.layers.{module}.lora_B.weight"] = [b0, b1];
        }
        Add("0.self_attn.o_proj", 4, 64, 64, 4); Add("1.self_attn.o_proj", 4, 64, 64, 4);
        Add("0.mlp.gate_proj", 4, 64, 128, 4); Add("0.mlp.up_proj", 4, 64, 128, 4); Add("0.mlp.down_proj", 4, 128, 64, 4);
        Add("1.mlp.shared_experts.gate_proj", 4, 64, 32, 4); Add("1.mlp.shared_experts.up_proj", 4, 64, 32, 4);
        Add("1.mlp.shared_experts.down_proj", 4, 32, 64, 4);
        Add("1.mlp.experts.base_layer", 32, 64, 64, 32);   // gate_up_proj (4, 64, 64): A (2r*E, H), B (2I, 2r*E)
        Add("1.mlp.experts", 16, 32, 64, 16);              // down_proj (4, 64, 32): A (r*E, I), B (H, r*E)
        var state = lora.PeftStateDict();
        Assert.Equal(expected.Keys.Order(), state.Keys.Order());
        foreach (var (k, shape) in expected) Assert.Equal(shape, state[k].shape);

        using var dir = new TempDir();
        PeftAdapterFiles.Save(dir.Path, lora, "base");
        var config = JsonNode.Parse(File.ReadAllText(dir.File(PeftAdapterFiles.ConfigFileName)))!;
        Assert.Equal(new[] { "o_proj" }, config["target_modules"]!.AsArray().Select(x => x!.ToString()));
        Assert.Equal(new[] { "mlp.down_proj.weight", "mlp.experts.down_proj", "mlp.experts.gate_up_proj", "mlp.gate_proj.weight",
            "mlp.shared_experts.down_proj.weight", "mlp.shared_experts.gate_proj.weight", "mlp.shared_experts.up_proj.weight", "mlp.up_proj.weight" },
            config["target_parameters"]!.AsArray().Select(x => x!.ToString()));
        Assert.Equal(8.0, config["rank_pattern"]![@".*\.gate_up_proj"]!.GetValue<double>());
        Assert.Equal(16.0, config["alpha_pattern"]![@".*\.gate_up_proj"]!.GetValue<double>());
        Assert.Equal(0.0, config["lora_dropout"]!.GetValue<double>());   // peft's ParamWrapper refuses dropout
        Assert.Equal((4, 8.0), (config["r"]!.GetValue<int>(), config["lora_alpha"]!.GetValue<double>()));
    }

    [Theory]
    [InlineData("down_proj", "1.mlp.experts", 16, 32, 64, 16)]                    // down alone: the only wrapper
    [InlineData("gate_proj,up_proj", "1.mlp.experts", 32, 64, 64, 32)]           // gate_up alone: the only wrapper
    public void A_single_fused_parameter_is_the_outer_wrapper(string targets, string module, long a0, long a1, long b0, long b1)
    {
        using var m = LoraScopesTests.Micro();
        using var lora = LoraAdapters.Attach(m, Fused with { TargetModules = targets.Split(',') }, seed: 1);
        var experts = lora.PeftStateDict().Where(kv => kv.Key.Contains(".mlp.experts")).ToDictionary();
        Assert.Equal(new[] { $"base_model.model.model.layers.{module}.lora_A.weight", $"base_model.model.model.layers.{module}.lora_B.weight" }, experts.Keys.Order());
        Assert.Equal(new[] { a0, a1 }, experts[$"base_model.model.model.layers.{module}.lora_A.weight"].shape);
        Assert.Equal(new[] { b0, b1 }, experts[$"base_model.model.model.layers.{module}.lora_B.weight"].shape);
    }

    // peft's ParamWrapper.get_delta_weight for a parameter (E, out, in), written again: A viewed (E, R, in), B viewed
    // (out, R, E), delta_e = scale * sum_k outer(B[:, k, e], A[e, k, :]).
    private static Tensor PeftDelta(Tensor a, Tensor b, double scale)
    {
        var a3 = a.to(float64).reshape(E, -1, a.shape[1]);
        var b3 = b.to(float64).reshape(b.shape[0], -1, E);
        var perExpert = new List<Tensor>();
        for (int e = 0; e < E; e++)
        {
            var d = zeros(b.shape[0], a.shape[1], float64);
            for (int k = 0; k < a3.shape[1]; k++) d += outer(b3[.., k, e], a3[e, k]);
            perExpert.Add(d * scale);
        }
        return stack(perExpert);   // (E, out, in)
    }

    [Fact]
    public void Each_experts_fused_update_equals_its_gate_up_and_down_updates_and_the_folded_weights()
    {
        using var m = LoraScopesTests.Micro();
        using var lora = Adapted(m, Fused);
        using var dir = new TempDir();
        PeftAdapterFiles.Save(dir.Path, lora, "base");
        var config = JsonNode.Parse(File.ReadAllText(dir.File(PeftAdapterFiles.ConfigFileName)))!;
        double gateUpScale = config["alpha_pattern"]![@".*\.gate_up_proj"]!.GetValue<double>() / config["rank_pattern"]![@".*\.gate_up_proj"]!.GetValue<double>();
        double downScale = config["lora_alpha"]!.GetValue<double>() / config["r"]!.GetValue<double>();
        var state = SafeTensors.Load(dir.File(PeftAdapterFiles.WeightsFileName));
        const string P = "base_model.model.model.layers.1.mlp.experts";
        var gateUp = PeftDelta(state[$"{P}.base_layer.lora_A.weight"], state[$"{P}.base_layer.lora_B.weight"], gateUpScale);   // (E, 2I, H)
        var down = PeftDelta(state[$"{P}.lora_A.weight"], state[$"{P}.lora_B.weight"], downScale);                              // (E, H, I)

        var ours = lora.ExpertEntries.ToDictionary(x => x.Proj, x => x.Adapter);
        Tensor Update(string proj, int e) => matmul(ours[proj].B[e].detach().to(float64), ours[proj].A[e].detach().to(float64)) * (8.0 / R);
        for (int e = 0; e < E; e++)
        {
            var expected = cat(new[] { Update("gate_proj", e), Update("up_proj", e) }, 0);   // transformers: gate rows, then up rows
            Assert.True((gateUp[e] - expected).abs().max().item<double>() < 1e-12, $"gate_up expert {e}");
            Assert.True((down[e] - Update("down_proj", e)).abs().max().item<double>() < 1e-12, $"down expert {e}");
        }
        Assert.True((gateUp[0] - gateUp[1]).abs().max().item<double>() > 1e-3, "experts get their own updates");

        // peft's merge (base + its delta) equals PostTrain's fold, in transformers 5's fused shapes
        var moe = ((MoE)m.MoeLayers().First()).ExpertWeights;
        using var _ = no_grad();
        var baseGateUp = cat(new Tensor[] { moe.GateProj, moe.UpProj }, 1).to(float64);   // (E, 2I, H)
        var baseDown = moe.DownProj.to(float64);
        lora.Fold();
        Assert.True((cat(new Tensor[] { moe.GateProj, moe.UpProj }, 1).to(float64) - (baseGateUp + gateUp)).abs().max().item<double>() < 1e-6);
        Assert.True((moe.DownProj.to(float64) - (baseDown + down)).abs().max().item<double>() < 1e-6);
        foreach (var t in state.Values) t.Dispose();
    }

    [Theory]
    [InlineData(PeftLayout.FusedExperts, PeftLayout.FusedExperts)]
    [InlineData(PeftLayout.PerExpert, PeftLayout.PerExpert)]
    [InlineData(PeftLayout.PerExpert, PeftLayout.FusedExperts)]   // a run resumed with the other layout reads the saved one
    [InlineData(PeftLayout.FusedExperts, PeftLayout.PerExpert)]
    public void Save_and_load_round_trip_exactly(PeftLayout saved, PeftLayout loader)
    {
        using var m = LoraScopesTests.Micro();
        using var lora = Adapted(m, Fused with { Layout = saved });
        using var dir = new TempDir();
        PeftAdapterFiles.Save(dir.Path, lora, "base");
        var (settings, _) = PeftAdapterFiles.ReadConfig(dir.Path);
        Assert.Equal(saved, settings.Layout);
        Assert.True(settings.RoutedExperts);
        Assert.Equal(new[] { "down_proj", "gate_proj", "o_proj", "up_proj" }, settings.TargetModules.Order());

        using var fresh = LoraScopesTests.Micro();
        using var loaded = LoraAdapters.Attach(fresh, settings with { Layout = loader }, seed: 99);
        PeftAdapterFiles.LoadWeights(dir.Path, loaded);
        foreach (var ((_, a), (_, b)) in lora.Entries.Zip(loaded.Entries))
            Assert.True(a.A.eq(b.A).all().item<bool>() && a.B.eq(b.B).all().item<bool>());
        foreach (var ((_, _, a), (_, _, b)) in lora.ExpertEntries.Zip(loaded.ExpertEntries))
            Assert.True(a.A.eq(b.A).all().item<bool>() && a.B.eq(b.B).all().item<bool>());
        lora.eval();
        loaded.eval();   // dropout off (the fused layout writes lora_dropout 0)
        using var _ = no_grad();
        Assert.True(fresh.forward(Ids).eq(m.forward(Ids)).all().item<bool>());
    }

    [Fact]
    public void Refusals_name_the_key()
    {
        using var m = LoraScopesTests.Micro();
        var half = Assert.Throws<ArgumentException>(() => LoraAdapters.Attach(m, Fused with { TargetModules = ["gate_proj", "down_proj"] }, seed: 1));
        Assert.Contains("lora.peft_layout", half.Message);
        Assert.Contains("gate_up_proj", half.Message);

        using var lora = Adapted(m, Fused);
        using var dir = new TempDir();
        PeftAdapterFiles.Save(dir.Path, lora, "base");
        var (settings, _) = PeftAdapterFiles.ReadConfig(dir.Path);
        // a gate_up B whose gate rows use an up rank (as a LoRA trained fused by peft has) has no exact separate form
        const string B = "base_model.model.model.layers.1.mlp.experts.base_layer.lora_B.weight";
        string weights = dir.File(PeftAdapterFiles.WeightsFileName);
        var state = SafeTensors.Load(weights);
        state[B][0, 2 * R * E - 1] = tensor(0.5f);   // gate row 0, last rank of the up half
        SafeTensors.Save(weights, state);
        using var fresh = LoraScopesTests.Micro();
        using var loaded = LoraAdapters.Attach(fresh, settings, seed: 2);
        var mixed = Assert.Throws<InvalidDataException>(() => PeftAdapterFiles.LoadWeights(dir.Path, loaded));
        Assert.Contains(B, mixed.Message);
        Assert.Contains("block-diagonal", mixed.Message);

        string configFile = dir.File(PeftAdapterFiles.ConfigFileName);
        var config = JsonNode.Parse(File.ReadAllText(configFile))!;
        config["target_parameters"]!.AsArray().Add("mlp.gate.weight");
        File.WriteAllText(configFile, config.ToJsonString());
        Assert.Contains("'mlp.gate.weight'", Assert.Throws<InvalidDataException>(() => PeftAdapterFiles.ReadConfig(dir.Path)).Message);
        config["target_parameters"]!.AsArray().RemoveAt(config["target_parameters"]!.AsArray().Count - 1);
        config["rank_pattern"]!["o_proj"] = 8;
        File.WriteAllText(configFile, config.ToJsonString());
        Assert.Contains("rank_pattern entry 'o_proj'", Assert.Throws<InvalidDataException>(() => PeftAdapterFiles.ReadConfig(dir.Path)).Message);
        foreach (var t in state.Values) t.Dispose();
    }
}
