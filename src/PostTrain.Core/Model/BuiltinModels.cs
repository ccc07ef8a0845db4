// Small built-in model configurations, so recipes run with no download. All are DeepSeek-V3-shaped
// (MLA with q LoRA, DeepSeekMoE with shared + routed experts and group-limited routing, MTP).
namespace PostTrain.Core.Model;

public static class BuiltinModels
{
    /// <summary>~3.7 M parameters at vocab 263 (the byte tokenizer's): 4 layers (1 dense), 8 experts top-2 + 1 shared, 1 MTP module.</summary>
    public static ModelConfig TinyMoe(int vocabSize = 263) => new()
    {
        ModelType = "deepseek_v3", VocabSize = vocabSize, HiddenSize = 192, IntermediateSize = 512, MoeIntermediateSize = 128,
        NumHiddenLayers = 4, NumAttentionHeads = 6, FirstKDenseReplace = 1, QLoraRank = 96, KvLoraRank = 64,
        QkNopeHeadDim = 32, QkRopeHeadDim = 16, VHeadDim = 32, NRoutedExperts = 8, NSharedExperts = 1, NumExpertsPerTok = 2,
        NGroup = 2, TopkGroup = 2, RoutedScalingFactor = 1.0, NormTopkProb = true, RopeTheta = 10000, RopeInterleave = true,
        MaxPositionEmbeddings = 1024, NumNextnPredictLayers = 1, TieWordEmbeddings = false,
    };

    /// <summary>~0.4 M parameters: the smallest useful shape, for tests.</summary>
    public static ModelConfig Micro(int vocabSize = 263) => new()
    {
        ModelType = "deepseek_v3", VocabSize = vocabSize, HiddenSize = 64, IntermediateSize = 128, MoeIntermediateSize = 32,
        NumHiddenLayers = 2, NumAttentionHeads = 4, FirstKDenseReplace = 1, QLoraRank = 32, KvLoraRank = 32,
        QkNopeHeadDim = 16, QkRopeHeadDim = 8, VHeadDim = 16, NRoutedExperts = 4, NSharedExperts = 1, NumExpertsPerTok = 2,
        NGroup = 2, TopkGroup = 1, RoutedScalingFactor = 1.0, NormTopkProb = true, RopeTheta = 10000, RopeInterleave = true,
        MaxPositionEmbeddings = 512, NumNextnPredictLayers = 1,
    };

    /// <summary>The benchmark model of shared/bench/bench-moe.json (274 M parameters).</summary>
    public static ModelConfig BenchMoe() => new()
    {
        ModelType = "deepseek_v3", VocabSize = 32000, HiddenSize = 768, IntermediateSize = 2048, MoeIntermediateSize = 384,
        NumHiddenLayers = 8, NumAttentionHeads = 12, NSharedExperts = 1, NRoutedExperts = 32, NumExpertsPerTok = 4,
        NGroup = 4, TopkGroup = 2, FirstKDenseReplace = 1, QLoraRank = 384, KvLoraRank = 256, QkNopeHeadDim = 64,
        QkRopeHeadDim = 32, VHeadDim = 64, MaxPositionEmbeddings = 4096, TieWordEmbeddings = false,
        RoutedScalingFactor = 2.5, NormTopkProb = true, RopeTheta = 10000, RopeInterleave = true,
    };

    /// <summary>The large benchmark model of shared/bench/bench-moe-large.json: the layer shapes of a 16B-A3B model
    /// (Moonlight-16B-A3B) cut to 4 layers (1 dense + 3 MoE), vocab 163,840, sigmoid routing with correction bias.</summary>
    public static ModelConfig BenchMoeLarge() => new()
    {
        ModelType = "deepseek_v3", VocabSize = 163840, HiddenSize = 2048, IntermediateSize = 11264, MoeIntermediateSize = 1408,
        NumHiddenLayers = 4, NumAttentionHeads = 16, NSharedExperts = 2, NRoutedExperts = 64, NumExpertsPerTok = 6,
        NGroup = 1, TopkGroup = 1, FirstKDenseReplace = 1, QLoraRank = null, KvLoraRank = 512, QkNopeHeadDim = 128,
        QkRopeHeadDim = 64, VHeadDim = 128, MaxPositionEmbeddings = 8192, RopeTheta = 50000, TieWordEmbeddings = false,
        RoutedScalingFactor = 2.446, NormTopkProb = true, ScoringFunc = "sigmoid", UseCorrectionBias = true,
    };

    public static readonly IReadOnlyDictionary<string, Func<ModelConfig>> ByName = new Dictionary<string, Func<ModelConfig>>
    {
        ["tiny-moe"] = () => TinyMoe(),
        ["micro-moe"] = () => Micro(),
        ["bench-moe"] = BenchMoe,
        ["bench-moe-large"] = BenchMoeLarge,
    };
}
