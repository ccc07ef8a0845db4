// Grouped LoRA on the routed experts of the Micro model (4 experts, hidden 64, expert width 32): PEFT's per-expert key
// names and shapes in the per_expert layout (approval list written by hand; the fused layout: PeftFusedExpertsTests),
// a new adapter changes nothing, the adapted output equals a copy of the base with W_e + (alpha / r) B_e A_e written in
// by hand and equals the folded model, training moves only adapter weights and lowers the loss, and the PEFT directory
// round-trips (routed experts detected from the config).
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Core.Tests.Checkpoints;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Core.Tests.Model;

public sealed class ExpertLoraTests
{
    private static readonly LoraSettings Settings = new(4, 8, 0, ["o_proj", "gate_proj", "up_proj", "down_proj"], RoutedExperts: true);
    private static readonly Tensor Ids = tensor(new long[] { 5, 17, 99, 3, 250, 8, 41, 7, 77, 120 }).view(2, -1);

    [Fact]
    public void Peft_names_and_shapes_for_routed_experts_per_expert_layout()
    {
        using var m = LoraScopesTests.Micro();
        using var lora = LoraAdapters.Attach(m, Settings with { Layout = PeftLayout.PerExpert }, seed: 1);
        var state = lora.PeftStateDict();
        var experts = state.Keys.Where(k => k.Contains(".mlp.experts.")).Order().ToList();
        var expected = new Dictionary<string, long[]>();
        for (int e = 0; e < 4; e++)
        {
            string p = $"base_model.model.model.layers.1.mlp.experts.{e}";
            expected[$"{p}.gate_proj.lora_A.weight"] = [4, 64]; expected[$"{p}.gate_proj.lora_B.weight"] = [32, 4];
            expected[$"{p}.up_proj.lora_A.weight"] = [4, 64]; expected[$"{p}.up_proj.lora_B.weight"] = [32, 4];
            expected[$"{p}.down_proj.lora_A.weight"] = [4, 32]; expected[$"{p}.down_proj.lora_B.weight"] = [64, 4];
        }
        Assert.Equal(expected.Keys.Order(), experts);
        foreach (var (k, shape) in expected) Assert.Equal(shape, state[k].shape);
        // the dense MLP, the shared experts and o_proj keep their per-module adapters
        Assert.Contains("base_model.model.model.layers.1.mlp.shared_experts.gate_proj.lora_A.weight", state.Keys);
        Assert.Contains("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", state.Keys);
        Assert.Equal(24 + 2 * (2 + 3 + 3), state.Count);   // experts; o_proj x 2 layers, dense MLP, shared experts (A + B each)
    }

    [Fact]
    public void Adapted_experts_equal_hand_merged_weights_and_the_folded_model()
    {
        using var m = LoraScopesTests.Micro();
        using var _ = no_grad();
        var baseLogits = m.forward(Ids).clone();
        using var lora = LoraAdapters.Attach(m, Settings, seed: 2);
        Assert.True(m.forward(Ids).eq(baseLogits).all().item<bool>(), "B = 0 changes nothing");
        var gen = new Generator(4);
        foreach (var (_, _, a) in lora.ExpertEntries) a.B.normal_(0, 0.2, generator: gen);
        var adapted = m.forward(Ids).clone();
        Assert.True((adapted - baseLogits).abs().max().item<float>() > 1e-3, "the expert adapters do something");

        using var reference = LoraScopesTests.Micro();   // same weights
        var moe = ((MoE)reference.MoeLayers().First()).ExpertWeights;
        foreach (var (_, proj, a) in lora.ExpertEntries)
        {
            var w = proj == "gate_proj" ? moe.GateProj : proj == "up_proj" ? moe.UpProj : moe.DownProj;
            for (int e = 0; e < 4; e++) w[e].add_(matmul(a.B[e], a.A[e]) * 2.0);   // alpha 8 / rank 4
        }
        Assert.True((reference.forward(Ids) - adapted).abs().max().item<float>() < 1e-5);

        lora.Fold();
        Assert.True((m.forward(Ids) - adapted).abs().max().item<float>() < 1e-5);
        Assert.Null(((MoE)m.MoeLayers().First()).ExpertWeights.GateLora);
    }

    [Fact]
    public void Training_moves_only_adapters_and_the_peft_directory_round_trips()
    {
        using var m = LoraScopesTests.Micro();
        var before = m.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var lora = LoraAdapters.Attach(m, Settings with { TargetModules = ["gate_proj", "up_proj", "down_proj"] }, seed: 3);
        lora.train();
        using var opt = new AdamW(lora.named_parameters().Select(p => (p.name, p.parameter)), lr: 0.02, weightDecay: 0);
        var target = Ids[.., 1..];
        var losses = new List<float>();
        for (int step = 0; step < 8; step++)
        {
            using var scope = NewDisposeScope();
            opt.ZeroGrad();
            var logits = m.forward(Ids)[.., ..^1];
            var loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), target.reshape(-1));
            loss.backward();
            opt.Step();
            losses.Add(loss.item<float>());
        }
        Assert.True(losses[^1] < losses[0] - 0.1, string.Join(" ", losses));
        foreach (var (name, p) in m.named_parameters()) Assert.True(p.detach().eq(before[name]).all().item<bool>(), $"{name} is frozen");
        Assert.True(lora.ExpertEntries.All(x => x.Adapter.B.abs().sum().item<float>() > 0), "every expert adapter trained");

        using var dir = new TempDir();
        PeftAdapterFiles.Save(dir.Path, lora, "base");
        var (settings, _) = PeftAdapterFiles.ReadConfig(dir.Path);
        Assert.True(settings.RoutedExperts);
        using var fresh = LoraScopesTests.Micro();
        var loaded = LoraAdapters.Attach(fresh, settings, seed: 99);
        PeftAdapterFiles.LoadWeights(dir.Path, loaded);
        lora.eval();
        loaded.eval();
        using var _ = no_grad();
        Assert.True(fresh.forward(Ids).eq(m.forward(Ids)).all().item<bool>(), "the reloaded adapters compute the same");
    }
}
