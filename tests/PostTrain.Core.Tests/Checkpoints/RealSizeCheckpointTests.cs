// The real-size (Moonlight-16B-A3B shape) checkpoint path without the memory for it: the layout and index of the
// 16B model planned from meta tensors, checked against hand-computed names, shapes, byte totals and the shard limit;
// the streaming writer checked byte for byte against the in-memory writer; a random-init checkpoint written tensor by
// tensor and streamed back into a model.
using System.Text.Json.Nodes;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class RealSizeCheckpointTests
{
    // benchmarks/moonlight-16b/config.json (the shape of Moonlight-16B-A3B).
    private const string Moonlight = """
        {"model_type": "deepseek_v3", "vocab_size": 163840, "hidden_size": 2048, "intermediate_size": 11264,
         "moe_intermediate_size": 1408, "num_hidden_layers": 27, "num_attention_heads": 16, "num_key_value_heads": 16,
         "n_shared_experts": 2, "n_routed_experts": 64, "num_experts_per_tok": 6, "n_group": 1, "topk_group": 1,
         "first_k_dense_replace": 1, "q_lora_rank": null, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
         "qk_rope_head_dim": 64, "v_head_dim": 128, "max_position_embeddings": 8192, "rope_theta": 50000.0,
         "tie_word_embeddings": false, "routed_scaling_factor": 2.446, "norm_topk_prob": true, "scoring_func": "sigmoid",
         "topk_method": "noaux_tc", "num_nextn_predict_layers": 0}
        """;

    private static ModelConfig MoonlightConfig() => ModelConfig.FromJson((JsonObject)JsonNode.Parse(Moonlight)!, "moonlight");

    // The same architecture scaled down (no q LoRA, sigmoid routing, 2 shared experts, first layer dense).
    private static ModelConfig Scaled() => MoonlightConfig() with
    {
        VocabSize = 96, HiddenSize = 32, IntermediateSize = 48, MoeIntermediateSize = 16, NumHiddenLayers = 3,
        NumAttentionHeads = 2, NRoutedExperts = 4, NumExpertsPerTok = 2, KvLoraRank = 16,
        QkNopeHeadDim = 8, QkRopeHeadDim = 4, VHeadDim = 8, MaxPositionEmbeddings = 64,
    };

    // Hand-written names and shapes of a deepseek_v3 checkpoint with q_lora_rank null (per-expert names on disk).
    private static Dictionary<string, long[]> Expected(ModelConfig c)
    {
        long H = c.HiddenSize, nh = c.NumAttentionHeads, qk = c.QkNopeHeadDim + c.QkRopeHeadDim, kv = c.KvLoraRank;
        long I = c.IntermediateSize, MI = c.MoeIntermediateSize, E = c.NRoutedExperts;
        var e = new Dictionary<string, long[]>
        {
            ["model.embed_tokens.weight"] = [c.VocabSize, H], ["model.norm.weight"] = [H], ["lm_head.weight"] = [c.VocabSize, H],
        };
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            e[p + "input_layernorm.weight"] = [H];
            e[p + "post_attention_layernorm.weight"] = [H];
            e[p + "self_attn.q_proj.weight"] = [nh * qk, H];
            e[p + "self_attn.kv_a_proj_with_mqa.weight"] = [kv + c.QkRopeHeadDim, H];
            e[p + "self_attn.kv_a_layernorm.weight"] = [kv];
            e[p + "self_attn.kv_b_proj.weight"] = [nh * (c.QkNopeHeadDim + c.VHeadDim), kv];
            e[p + "self_attn.o_proj.weight"] = [H, nh * c.VHeadDim];
            if (l < c.FirstKDenseReplace)
            {
                e[p + "mlp.gate_proj.weight"] = [I, H]; e[p + "mlp.up_proj.weight"] = [I, H]; e[p + "mlp.down_proj.weight"] = [H, I];
                continue;
            }
            e[p + "mlp.gate.weight"] = [E, H];
            e[p + "mlp.gate.e_score_correction_bias"] = [E];
            for (int x = 0; x < E; x++)
            {
                e[p + $"mlp.experts.{x}.gate_proj.weight"] = [MI, H]; e[p + $"mlp.experts.{x}.up_proj.weight"] = [MI, H];
                e[p + $"mlp.experts.{x}.down_proj.weight"] = [H, MI];
            }
            long S = MI * c.NSharedExperts;
            e[p + "mlp.shared_experts.gate_proj.weight"] = [S, H]; e[p + "mlp.shared_experts.up_proj.weight"] = [S, H];
            e[p + "mlp.shared_experts.down_proj.weight"] = [H, S];
        }
        return e;
    }

    private static long Numel(long[] s) => s.Aggregate(1L, (a, b) => a * b);

    [Fact]
    public void SixteenBIndexIsPlannedFromMetaTensorsWithHuggingFaceNamesShapesAndShardLimit()
    {
        var layout = PretrainedModel.Layout(MoonlightConfig(), ScalarType.BFloat16);
        Assert.All(layout.Values, t => Assert.Equal(DeviceType.META, t.device_type));   // nothing allocated
        var expected = Expected(MoonlightConfig());
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), layout.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected) Assert.True(shape.SequenceEqual(layout[name].shape), name);

        long parameters = expected.Values.Sum(Numel);
        Assert.Equal(15_960_110_208L, parameters);   // 2 * 163840 * 2048 + 2048 + 27 layers (by the formula in Expected)
        long biasBytes = 26L * 64 * 4;                 // the correction biases stay fp32
        const long max = 2_000_000_000;
        var plan = ShardLayout.Plan(layout, max, "moonlight");
        Assert.Equal((parameters - 26L * 64) * 2 + biasBytes, plan.TotalSize);
        Assert.All(plan.Files, f => Assert.True(f.Bytes <= max, $"{f.FileName}: {f.Bytes} bytes"));
        Assert.InRange(plan.Files.Count, (int)Math.Ceiling(plan.TotalSize / (double)max), 2 * (int)Math.Ceiling(plan.TotalSize / (double)max));
        Assert.True(plan.Files.Sum(f => f.Bytes) == plan.TotalSize && plan.Files.Sum(f => f.Tensors.Count) == expected.Count);

        var index = JsonNode.Parse(plan.IndexJson())!;
        Assert.Equal(plan.TotalSize, index["metadata"]!["total_size"]!.GetValue<long>());
        var map = index["weight_map"]!.AsObject();
        Assert.Equal(expected.Count, map.Count);
        Assert.Equal($"model-00001-of-{plan.Files.Count:D5}.safetensors", map["lm_head.weight"]!.GetValue<string>());   // natural order: lm_head first
        Assert.Equal($"model-{plan.Files.Count:D5}-of-{plan.Files.Count:D5}.safetensors", map["model.norm.weight"]!.GetValue<string>());
    }

    [Fact]
    public void LayoutOfTheScaledModelEqualsTheCheckpointOfTheModelBuiltForReal()
    {
        using var model = new DeepSeekForCausalLM(Scaled());
        var real = HfStateDict.Export(model);
        var layout = PretrainedModel.Layout(Scaled(), ScalarType.Float32);
        var expected = Expected(Scaled());
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), real.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(real.Keys.Order(StringComparer.Ordinal), layout.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, t) in real)
        {
            Assert.True(t.shape.SequenceEqual(layout[name].shape) && t.shape.SequenceEqual(expected[name]), name);
            Assert.Equal(t.dtype, layout[name].dtype);
        }
    }

    [Fact]
    public void StreamingWriterWritesTheSameBytesAsTheInMemoryWriter()
    {
        using var dir = new TempDir();
        using var model = new DeepSeekForCausalLM(Scaled());
        model.InitWeights(0.02, seed: 3);
        PretrainedModel.Save(model, dir.File("memory"), ScalarType.BFloat16, maxShardBytes: 20_000);
        var state = HfStateDict.Export(model);
        var layout = PretrainedModel.Layout(Scaled(), ScalarType.BFloat16);
        var produced = new List<string>();
        SafeTensors.SaveDirectoryStreaming(dir.File("stream"), layout, name =>
        {
            produced.Add(name);
            return state[name].to(layout[name].dtype);
        }, model.Config.ToJsonString(), new CheckpointSaveOptions { MaxShardBytes = 20_000 });

        Assert.Equal(layout.Count, produced.Distinct().Count());   // each tensor made once, when written
        var files = Directory.GetFiles(dir.File("memory")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count > 3, "the small shard limit must give several shards");
        Assert.Equal(files, Directory.GetFiles(dir.File("stream")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList());
        foreach (var f in files)
            Assert.True(File.ReadAllBytes(Path.Combine(dir.File("memory"), f!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir.File("stream"), f!))), f);
    }

    [Fact]
    public void RandomInitCheckpointStreamsBackIntoTheModel()
    {
        using var dir = new TempDir();
        var cfg = Scaled();
        var plan = RandomInitCheckpoint.Write(cfg, dir.Path, ScalarType.BFloat16, seed: 7, std: 0.02, maxShardBytes: 30_000);
        Assert.True(plan.Sharded && File.Exists(dir.File(ShardIndex.FileName)));
        Assert.Equal(plan.IndexJson(), File.ReadAllText(dir.File(ShardIndex.FileName)));

        var (model, report) = PretrainedModel.Load(dir.Path);
        using (model)
        {
            Assert.True(report.Seconds > 0 && report.PeakHostBytes > 0);
            var state = HfStateDict.Export(model);
            var layout = PretrainedModel.Layout(cfg, ScalarType.BFloat16);
            foreach (var (name, t) in state)
            {
                using var scope = NewDisposeScope();
                var want = RandomInitCheckpoint.Value(name, layout[name], 7, 0.02, CPU).to(ScalarType.Float32);
                Assert.True(t.eq(want).all().item<bool>(), name);
            }
            var q = state["model.layers.1.self_attn.q_proj.weight"];
            Assert.InRange(q.std().item<float>(), 0.018, 0.022);
            Assert.Equal(1f, state["model.layers.2.input_layernorm.weight"].min().item<float>());
            Assert.False(state["model.layers.1.mlp.experts.0.gate_proj.weight"].eq(state["model.layers.1.mlp.experts.1.gate_proj.weight"]).all().item<bool>());
        }
    }

    [Fact]
    public void StreamedLoadEqualsTheInMemoryLoad()
    {
        using var dir = new TempDir();
        using var source = new DeepSeekForCausalLM(BuiltinModels.Micro());
        source.InitWeights(0.02, seed: 5);
        PretrainedModel.Save(source, dir.Path, maxShardBytes: 50_000);
        var (streamed, _) = PretrainedModel.Load(dir.Path);
        using var inMemory = new DeepSeekForCausalLM(BuiltinModels.Micro());
        var all = SafeTensors.Load(dir.Path);
        HfStateDict.Load(inMemory, all, dir.Path);
        using (streamed)
            foreach (var ((name, a), (_, b)) in streamed.state_dict().Zip(inMemory.state_dict()))
                Assert.True(a.eq(b).all().item<bool>(), name);
        foreach (var t in all.Values) t.Dispose();
    }
}
