// The linear layers of PostTrain's bench model (/work/shared/bench/bench-moe.json: hidden 768, q_lora 384,
// kv_lora 256, 12 heads of 64 nope + 32 rope dims and 64 value dims, intermediate 2048, moe_intermediate
// 384, 32 routed experts, top-4, 8192 tokens per step) whose GEMMs the FP8 recipe covers. The router,
// embedding and output head stay in higher precision and are not listed.
namespace PostTrain.Core.Precision;

public static class Fp8BenchShapes
{
    public const long Tokens = 8192;
    public const int Experts = 32;
    public const int TopK = 4;

    /// <summary>Tokens one routed expert sees on average: Tokens * TopK / Experts.</summary>
    public const long TokensPerExpert = Tokens * TopK / Experts;

    /// <summary>(Name, In, Out, Rows): rows is the GEMM's token count per call at Tokens tokens.</summary>
    public static IReadOnlyList<(string Name, long In, long Out, long Rows)> Linears { get; } =
    [
        ("q_a_proj", 768, 384, Tokens),
        ("q_b_proj", 384, 1152, Tokens),
        ("kv_a_proj_with_mqa", 768, 288, Tokens),
        ("kv_b_proj", 256, 1536, Tokens),
        ("o_proj", 768, 768, Tokens),
        ("mlp.gate/up_proj", 768, 2048, Tokens),
        ("mlp.down_proj", 2048, 768, Tokens),
        ("shared_experts.gate/up", 768, 384, Tokens),
        ("shared_experts.down", 384, 768, Tokens),
        ("experts.E.gate/up", 768, 384, TokensPerExpert),
        ("experts.E.down", 384, 768, TokensPerExpert),
    ];

    /// <summary>The routed experts' GEMMs of both bench models, for the grouped FP8 checks and table:
    /// (Name, In, Out, Experts, TokensPerExpert) with 8192 tokens per step. bench-moe-large
    /// (/work/shared/bench/bench-moe-large.json: a 16B-A3B model's layers) has hidden 2048, moe_intermediate 1408,
    /// 64 routed experts, top-6.</summary>
    public static IReadOnlyList<(string Name, long In, long Out, int Experts, long TokensPerExpert)> RoutedExperts { get; } =
    [
        ("bench-moe experts gate/up", 768, 384, Experts, TokensPerExpert),
        ("bench-moe experts down", 384, 768, Experts, TokensPerExpert),
        ("bench-moe-large experts gate/up", 2048, 1408, 64, Tokens * 6 / 64),
        ("bench-moe-large experts down", 1408, 2048, 64, Tokens * 6 / 64),
    ];
}
