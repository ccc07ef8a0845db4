// The model configuration, read from a Hugging Face config.json (model_type deepseek_v3, or deepseek_v2-style softmax
// routing without a correction bias). Every field that changes the computation is here; fields that do not
// (initializer_range, use_cache, ...) are ignored. Validation names the file and the key at fault.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PostTrain.Core.Model;

/// <summary>YaRN rope scaling (rope_scaling / rope_parameters with rope_type "yarn").</summary>
public sealed record YarnScaling(double Factor, int OriginalMaxPositionEmbeddings, double BetaFast = 32, double BetaSlow = 1,
    double? Mscale = null, double? MscaleAllDim = null, double? AttentionFactor = null, bool Truncate = true);

public sealed record ModelConfig
{
    public string ModelType { get; init; } = "deepseek_v3";
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int MoeIntermediateSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    public int FirstKDenseReplace { get; init; }
    public int? QLoraRank { get; init; }
    public int KvLoraRank { get; init; }
    public int QkNopeHeadDim { get; init; }
    public int QkRopeHeadDim { get; init; }
    public int VHeadDim { get; init; }
    public int NRoutedExperts { get; init; }
    public int NSharedExperts { get; init; }
    public int NumExpertsPerTok { get; init; }
    public int NGroup { get; init; } = 1;
    public int TopkGroup { get; init; } = 1;
    public double RoutedScalingFactor { get; init; } = 1.0;
    public bool NormTopkProb { get; init; } = true;
    /// <summary>"sigmoid" (V3, with e_score_correction_bias) or "softmax" (V2, no bias).</summary>
    public string ScoringFunc { get; init; } = "sigmoid";
    public bool UseCorrectionBias { get; init; } = true;
    public double RopeTheta { get; init; } = 10000;
    public YarnScaling? Yarn { get; init; }
    public bool RopeInterleave { get; init; } = true;
    public double RmsNormEps { get; init; } = 1e-6;
    public bool TieWordEmbeddings { get; init; }
    public int NumNextnPredictLayers { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 4096;
    public bool AttentionBias { get; init; }
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }
    public int? PadTokenId { get; init; }

    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;
    public bool IsMoeLayer(int layer) => NRoutedExperts > 0 && layer >= FirstKDenseReplace;

    /// <summary>Reads and validates a Hugging Face config.json.</summary>
    public static ModelConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw new ModelConfigException(path, null, "file not found");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new ModelConfigException(path, null, $"invalid JSON (line {e.LineNumber + 1}): {e.Message}"); }
        if (root is not JsonObject obj) throw new ModelConfigException(path, null, "expected a JSON object");
        return FromJson(obj, path);
    }

    public static ModelConfig FromJson(JsonObject o, string source)
    {
        string modelType = Str(o, "model_type", source) ?? throw new ModelConfigException(source, "model_type", "missing");
        if (modelType is not ("deepseek_v3" or "deepseek_v2"))
            throw new ModelConfigException(source, "model_type", $"'{modelType}' is not supported (supported: deepseek_v3, deepseek_v2)");
        bool v2 = modelType == "deepseek_v2";

        // rope: transformers 5 writes rope_parameters {rope_theta, rope_type, ...}; older files rope_theta + rope_scaling.
        JsonObject? rope = o["rope_parameters"] as JsonObject ?? o["rope_scaling"] as JsonObject;
        double theta = Num(rope, "rope_theta", source) ?? Num(o, "rope_theta", source) ?? 10000;
        YarnScaling? yarn = null;
        if (rope != null)
        {
            string type = Str(rope, "rope_type", source) ?? Str(rope, "type", source) ?? "default";
            if (type == "yarn")
            {
                yarn = new YarnScaling(
                    Factor: Num(rope, "factor", source) ?? throw new ModelConfigException(source, "rope_parameters.factor", "missing for yarn"),
                    OriginalMaxPositionEmbeddings: (int)(Num(rope, "original_max_position_embeddings", source)
                        ?? throw new ModelConfigException(source, "rope_parameters.original_max_position_embeddings", "missing for yarn")),
                    BetaFast: Num(rope, "beta_fast", source) is { } bf && bf != 0 ? bf : 32,
                    BetaSlow: Num(rope, "beta_slow", source) is { } bs && bs != 0 ? bs : 1,
                    Mscale: Num(rope, "mscale", source),
                    MscaleAllDim: Num(rope, "mscale_all_dim", source),
                    AttentionFactor: Num(rope, "attention_factor", source),
                    Truncate: Bool(rope, "truncate", source) ?? true);
            }
            else if (type != "default")
                throw new ModelConfigException(source, "rope_parameters.rope_type", $"'{type}' is not supported (default, yarn)");
        }

        string scoring = Str(o, "scoring_func", source) ?? (v2 ? "softmax" : "sigmoid");
        var c = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = Int(o, "vocab_size", source, required: true)!.Value,
            HiddenSize = Int(o, "hidden_size", source, required: true)!.Value,
            IntermediateSize = Int(o, "intermediate_size", source, required: true)!.Value,
            MoeIntermediateSize = Int(o, "moe_intermediate_size", source) ?? 0,
            NumHiddenLayers = Int(o, "num_hidden_layers", source, required: true)!.Value,
            NumAttentionHeads = Int(o, "num_attention_heads", source, required: true)!.Value,
            FirstKDenseReplace = Int(o, "first_k_dense_replace", source) ?? 0,
            QLoraRank = Int(o, "q_lora_rank", source),
            KvLoraRank = Int(o, "kv_lora_rank", source, required: true)!.Value,
            QkNopeHeadDim = Int(o, "qk_nope_head_dim", source, required: true)!.Value,
            QkRopeHeadDim = Int(o, "qk_rope_head_dim", source, required: true)!.Value,
            VHeadDim = Int(o, "v_head_dim", source, required: true)!.Value,
            NRoutedExperts = Int(o, "n_routed_experts", source) ?? 0,
            NSharedExperts = Int(o, "n_shared_experts", source) ?? 0,
            NumExpertsPerTok = Int(o, "num_experts_per_tok", source) ?? 0,
            NGroup = Int(o, "n_group", source) ?? 1,
            TopkGroup = Int(o, "topk_group", source) ?? 1,
            RoutedScalingFactor = Num(o, "routed_scaling_factor", source) ?? 1.0,
            NormTopkProb = Bool(o, "norm_topk_prob", source) ?? !v2,
            ScoringFunc = scoring,
            UseCorrectionBias = !v2 && (Str(o, "topk_method", source) ?? "noaux_tc") == "noaux_tc",
            RopeTheta = theta,
            Yarn = yarn,
            RopeInterleave = Bool(o, "rope_interleave", source) ?? true,
            RmsNormEps = Num(o, "rms_norm_eps", source) ?? 1e-6,
            TieWordEmbeddings = Bool(o, "tie_word_embeddings", source) ?? false,
            NumNextnPredictLayers = Int(o, "num_nextn_predict_layers", source) ?? 0,
            MaxPositionEmbeddings = Int(o, "max_position_embeddings", source) ?? 4096,
            AttentionBias = Bool(o, "attention_bias", source) ?? false,
            BosTokenId = Int(o, "bos_token_id", source),
            EosTokenId = FirstInt(o, "eos_token_id", source),
            PadTokenId = Int(o, "pad_token_id", source),
        };
        int? kvHeads = Int(o, "num_key_value_heads", source);
        if (kvHeads is { } kv && kv != c.NumAttentionHeads)
            throw new ModelConfigException(source, "num_key_value_heads", $"{kv} != num_attention_heads {c.NumAttentionHeads}: MLA shares one latent, grouped KV heads are not part of this architecture");
        string? act = Str(o, "hidden_act", source);
        if (act is not null and not "silu")
            throw new ModelConfigException(source, "hidden_act", $"'{act}' is not supported (silu)");
        c.Validate(source);
        return c;
    }

    /// <summary>Checks the sizes fit together; throws naming the key.</summary>
    public void Validate(string source = "config")
    {
        void Positive(int v, string key) { if (v <= 0) throw new ModelConfigException(source, key, $"must be > 0 (got {v})"); }
        Positive(VocabSize, "vocab_size"); Positive(HiddenSize, "hidden_size"); Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads"); Positive(KvLoraRank, "kv_lora_rank");
        Positive(QkNopeHeadDim, "qk_nope_head_dim"); Positive(VHeadDim, "v_head_dim"); Positive(IntermediateSize, "intermediate_size");
        if (QkRopeHeadDim <= 0 || QkRopeHeadDim % 2 != 0)
            throw new ModelConfigException(source, "qk_rope_head_dim", $"must be a positive even number (got {QkRopeHeadDim})");
        if (QLoraRank is { } q && q <= 0) throw new ModelConfigException(source, "q_lora_rank", $"must be > 0 or null (got {q})");
        if (ScoringFunc is not ("sigmoid" or "softmax"))
            throw new ModelConfigException(source, "scoring_func", $"'{ScoringFunc}' is not supported (sigmoid, softmax)");
        if (FirstKDenseReplace < 0 || FirstKDenseReplace > NumHiddenLayers)
            throw new ModelConfigException(source, "first_k_dense_replace", $"{FirstKDenseReplace} is outside 0..num_hidden_layers ({NumHiddenLayers})");
        if (NumNextnPredictLayers < 0) throw new ModelConfigException(source, "num_nextn_predict_layers", "must be >= 0");
        if (FirstKDenseReplace < NumHiddenLayers || NumNextnPredictLayers > 0)
        {
            if (NRoutedExperts <= 0) return; // all layers dense
            Positive(MoeIntermediateSize, "moe_intermediate_size");
            if (NumExpertsPerTok <= 0 || NumExpertsPerTok > NRoutedExperts)
                throw new ModelConfigException(source, "num_experts_per_tok", $"must be in 1..n_routed_experts ({NRoutedExperts}), got {NumExpertsPerTok}");
            if (NGroup <= 0 || NRoutedExperts % NGroup != 0)
                throw new ModelConfigException(source, "n_group", $"n_routed_experts ({NRoutedExperts}) must divide into n_group ({NGroup}) equal groups");
            if (TopkGroup <= 0 || TopkGroup > NGroup)
                throw new ModelConfigException(source, "topk_group", $"must be in 1..n_group ({NGroup}), got {TopkGroup}");
            if (NGroup > 1 && NRoutedExperts / NGroup < 2)
                throw new ModelConfigException(source, "n_group", "group-limited routing scores a group by its top-2 experts: each group needs at least 2 experts");
            if (NumExpertsPerTok > TopkGroup * (NRoutedExperts / NGroup))
                throw new ModelConfigException(source, "num_experts_per_tok", $"{NumExpertsPerTok} experts cannot be chosen from {TopkGroup} groups of {NRoutedExperts / NGroup}");
        }
    }

    /// <summary>The config.json Hugging Face transformers reads for this model.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(ModelType == "deepseek_v2" ? "DeepseekV2ForCausalLM" : "DeepseekV3ForCausalLM"),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize, ["hidden_size"] = HiddenSize, ["intermediate_size"] = IntermediateSize,
            ["moe_intermediate_size"] = MoeIntermediateSize, ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads, ["num_key_value_heads"] = NumAttentionHeads,
            ["first_k_dense_replace"] = FirstKDenseReplace, ["q_lora_rank"] = QLoraRank, ["kv_lora_rank"] = KvLoraRank,
            ["qk_nope_head_dim"] = QkNopeHeadDim, ["qk_rope_head_dim"] = QkRopeHeadDim, ["v_head_dim"] = VHeadDim,
            ["n_routed_experts"] = NRoutedExperts, ["n_shared_experts"] = NSharedExperts, ["num_experts_per_tok"] = NumExpertsPerTok,
            ["n_group"] = NGroup, ["topk_group"] = TopkGroup, ["routed_scaling_factor"] = F(RoutedScalingFactor),
            ["norm_topk_prob"] = NormTopkProb, ["scoring_func"] = ScoringFunc,
            ["topk_method"] = UseCorrectionBias ? "noaux_tc" : (NGroup > 1 ? "group_limited_greedy" : "greedy"),
            ["rope_interleave"] = RopeInterleave, ["rms_norm_eps"] = F(RmsNormEps), ["tie_word_embeddings"] = TieWordEmbeddings,
            ["num_nextn_predict_layers"] = NumNextnPredictLayers, ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["attention_bias"] = AttentionBias, ["hidden_act"] = "silu",
            ["bos_token_id"] = BosTokenId, ["eos_token_id"] = EosTokenId, ["pad_token_id"] = PadTokenId,
        };
        var rope = new JsonObject { ["rope_theta"] = F(RopeTheta), ["rope_type"] = Yarn is null ? "default" : "yarn" };
        if (Yarn is { } y)
        {
            rope["factor"] = F(y.Factor); rope["original_max_position_embeddings"] = y.OriginalMaxPositionEmbeddings;
            rope["beta_fast"] = F(y.BetaFast); rope["beta_slow"] = F(y.BetaSlow);
            if (y.Mscale is { } m) rope["mscale"] = F(m);
            if (y.MscaleAllDim is { } ma) rope["mscale_all_dim"] = F(ma);
            if (y.AttentionFactor is { } af) rope["attention_factor"] = F(af);
            if (!y.Truncate) rope["truncate"] = false;
        }
        o["rope_parameters"] = rope;
        return o;
    }

    /// <summary>A float written as a JSON float ("1.0", not "1"): transformers' strict config types reject an int.</summary>
    private static JsonNode F(double x)
    {
        string r = x.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (!r.Contains('.') && !r.Contains('E') && !r.Contains("Infinity") && !r.Contains("NaN")) r += ".0";
        return JsonNode.Parse(r)!;
    }

    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    // ---- JSON helpers: type errors name the key ----
    static string? Str(JsonObject? o, string key, string src)
    {
        if (o is null || !o.TryGetPropertyValue(key, out var n) || n is null) return null;
        if (n is JsonValue v && v.TryGetValue(out string? s)) return s;
        throw new ModelConfigException(src, key, $"expected a string, got {n.ToJsonString()}");
    }
    static double? Num(JsonObject? o, string key, string src)
    {
        if (o is null || !o.TryGetPropertyValue(key, out var n) || n is null) return null;
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
            return double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
        throw new ModelConfigException(src, key, $"expected a number, got {n.ToJsonString()}");
    }
    static int? Int(JsonObject? o, string key, string src, bool required = false)
    {
        double? d = Num(o, key, src);
        if (d is null) return required ? throw new ModelConfigException(src, key, "missing") : null;
        if (d != Math.Floor(d.Value)) throw new ModelConfigException(src, key, $"expected an integer, got {d}");
        return (int)d.Value;
    }
    static int? FirstInt(JsonObject o, string key, string src) =>
        o[key] is JsonArray a ? (a.Count > 0 ? int.Parse(a[0]!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture) : null) : Int(o, key, src);
    static bool? Bool(JsonObject? o, string key, string src)
    {
        if (o is null || !o.TryGetPropertyValue(key, out var n) || n is null) return null;
        if (n is JsonValue v && (v.GetValueKind() is JsonValueKind.True or JsonValueKind.False)) return v.GetValue<bool>();
        throw new ModelConfigException(src, key, $"expected true or false, got {n.ToJsonString()}");
    }
}

public sealed class ModelConfigException(string source, string? key, string message)
    : Exception(key is null ? $"{source}: {message}" : $"{source}: '{key}' {message}")
{
    public string Source_ { get; } = source;
    public string? Key { get; } = key;
}
