using System.Text.Json.Nodes;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

/// <summary>The checkpoint names and shapes for the real DeepSeek-V3 config (671B + MTP), built on the meta device
/// (no memory), against the names and shapes of the released Hugging Face checkpoint, written out here by hand.</summary>
public sealed class StateDictApprovalTests
{
    const string V3Config = """
    { "model_type": "deepseek_v3", "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
      "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128,
      "first_k_dense_replace": 3, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
      "v_head_dim": 128, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4,
      "routed_scaling_factor": 2.5, "norm_topk_prob": true, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
      "num_nextn_predict_layers": 1, "rope_theta": 10000, "tie_word_embeddings": false, "rms_norm_eps": 1e-6,
      "max_position_embeddings": 163840,
      "rope_scaling": { "type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
                        "mscale": 1.0, "mscale_all_dim": 1.0 } }
    """;

    static Dictionary<string, long[]> Expected()
    {
        var e = new Dictionary<string, long[]>
        {
            ["model.embed_tokens.weight"] = [129280, 7168],
            ["model.norm.weight"] = [7168],
            ["lm_head.weight"] = [129280, 7168],
        };
        void Block(int l, bool moe)
        {
            string p = $"model.layers.{l}.";
            e[p + "input_layernorm.weight"] = [7168];
            e[p + "post_attention_layernorm.weight"] = [7168];
            e[p + "self_attn.q_a_proj.weight"] = [1536, 7168];
            e[p + "self_attn.q_a_layernorm.weight"] = [1536];
            e[p + "self_attn.q_b_proj.weight"] = [24576, 1536];          // 128 heads x (128 + 64)
            e[p + "self_attn.kv_a_proj_with_mqa.weight"] = [576, 7168];  // 512 + 64
            e[p + "self_attn.kv_a_layernorm.weight"] = [512];
            e[p + "self_attn.kv_b_proj.weight"] = [32768, 512];          // 128 heads x (128 + 128)
            e[p + "self_attn.o_proj.weight"] = [7168, 16384];
            if (!moe)
            {
                e[p + "mlp.gate_proj.weight"] = [18432, 7168];
                e[p + "mlp.up_proj.weight"] = [18432, 7168];
                e[p + "mlp.down_proj.weight"] = [7168, 18432];
                return;
            }
            e[p + "mlp.gate.weight"] = [256, 7168];
            e[p + "mlp.gate.e_score_correction_bias"] = [256];
            for (int x = 0; x < 256; x++)
            {
                e[p + $"mlp.experts.{x}.gate_proj.weight"] = [2048, 7168];
                e[p + $"mlp.experts.{x}.up_proj.weight"] = [2048, 7168];
                e[p + $"mlp.experts.{x}.down_proj.weight"] = [7168, 2048];
            }
            e[p + "mlp.shared_experts.gate_proj.weight"] = [2048, 7168];
            e[p + "mlp.shared_experts.up_proj.weight"] = [2048, 7168];
            e[p + "mlp.shared_experts.down_proj.weight"] = [7168, 2048];
        }
        for (int l = 0; l < 61; l++) Block(l, l >= 3);
        Block(61, true);                                                  // the MTP module's block
        e["model.layers.61.embed_tokens.weight"] = [129280, 7168];
        e["model.layers.61.enorm.weight"] = [7168];
        e["model.layers.61.hnorm.weight"] = [7168];
        e["model.layers.61.eh_proj.weight"] = [7168, 14336];
        e["model.layers.61.shared_head.norm.weight"] = [7168];
        e["model.layers.61.shared_head.head.weight"] = [129280, 7168];
        return e;
    }

    [Fact]
    public void DeepSeekV3NamesAndShapesMatchTheHuggingFaceCheckpoint()
    {
        var cfg = ModelConfig.FromJson((JsonObject)JsonNode.Parse(V3Config)!, "v3");
        var model = new DeepSeekForCausalLM(cfg, new Device("meta"));
        var actual = HfStateDict.Export(model);
        var expected = Expected();
        var missing = expected.Keys.Except(actual.Keys).Take(5).ToList();
        var extra = actual.Keys.Except(expected.Keys).Take(5).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0, $"missing: {string.Join(", ", missing)}; extra: {string.Join(", ", extra)}");
        foreach (var (name, shape) in expected)
            Assert.True(shape.SequenceEqual(actual[name].shape), $"{name}: [{string.Join(",", actual[name].shape)}] expected [{string.Join(",", shape)}]");
        Assert.Equal(3 * 12 + 59 * 782 + 3 + 6, expected.Count);   // 3 dense + 58 MoE + MTP block, 3 globals, 6 MTP extras

        // main model (without MTP and its copies): the 671B of the report
        long main = expected.Where(kv => !kv.Key.StartsWith("model.layers.61.")).Sum(kv => kv.Value.Aggregate(1L, (a, b) => a * b));
        Assert.InRange(main, 670_000_000_000L, 672_000_000_000L);
    }
}
