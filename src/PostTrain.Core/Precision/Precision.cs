// The numeric precision of a linear layer's matrix products (see LinearOps).
// Master weights, gradients and optimizer state stay FP32 whatever is chosen here.
namespace PostTrain.Core.Precision;

public enum Precision
{
    /// <summary>Plain FP32 matmul.</summary>
    Fp32,

    /// <summary>Inputs and weights cast to BF16 for the matmul (autocast-like); the result is cast back to the input's dtype.</summary>
    Bf16,

    /// <summary>DeepSeek-V3 fine-grained FP8 (E4M3) for the forward, input-gradient and weight-gradient GEMMs.</summary>
    Fp8,
}
