// The one place every linear layer of the model goes through: y = x W^T + b at a chosen Precision.
// x (..., in), weight (out, in) FP32 master weight, bias (out) or null; returns (..., out) in x's dtype.
//   Fp32: torch linear. Bf16: x and W cast to bf16 for the matmul, product cast back to x's dtype, bias
//   added in x's dtype (autocast keeps bf16; returning x's dtype lets an FP32 residual stream stay FP32).
//   Fp8: DeepSeek-V3 fine-grained FP8 for all three GEMMs: on CUDA with the native FP8 kernels (Fp8Kernels.For),
//   the grouped function with one expert; otherwise Fp8LinearFunction (_scaled_mm on CUDA, emulation on the CPU).
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public static class LinearOps
{
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias, Precision p)
    {
        CheckShapes(x, weight, bias);
        switch (p)
        {
            case Precision.Fp32:
                return nn.functional.linear(x, weight, bias);
            case Precision.Bf16:
            {
                var y = nn.functional.linear(x.to(ScalarType.BFloat16), weight.to(ScalarType.BFloat16)).to(x.dtype);
                return bias is null ? y : y + bias.to(x.dtype);
            }
            case Precision.Fp8:
            {
                long inFeatures = weight.shape[1], outFeatures = weight.shape[0];
                var x2 = x.reshape(-1, inFeatures);                                         // (M, in)
                var y = Kernels.Fp8Kernels.For(x2) is { } kernels
                    ? DenseOnKernels(x2, weight, bias, kernels)
                    : Fp8LinearFunction.apply(x2, weight, bias!)[0];                      // (M, out)
                return y.reshape([.. x.shape[..^1], outFeatures]);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(p), p, "Unknown precision.");
        }
    }

    // A dense FP8 layer on the native kernels: the grouped function with one expert holding all M rows (the same
    // recipe and tiles as Fp8LinearFunction; no K padding to 512, one fused pass per quantisation).
    private static Tensor DenseOnKernels(Tensor x2, Tensor weight, Tensor? bias, Kernels.IFp8Kernels kernels)
    {
        var y = Fp8AlignedGroupedFunction.apply(x2, weight, Fp8AlignedGroupedFunction.DenseRows, kernels)[0];  // (M, out)
        return bias is null ? y : y + bias.to(y.dtype);
    }

    private static void CheckShapes(Tensor x, Tensor weight, Tensor? bias)
    {
        if (weight.dim() != 2)
            throw new ArgumentException($"Linear weight must be (out, in); got [{string.Join(", ", weight.shape)}].", nameof(weight));
        if (x.dim() < 1 || x.shape[^1] != weight.shape[1])
            throw new ArgumentException($"Linear input [{string.Join(", ", x.shape)}] does not end in the weight's in-features {weight.shape[1]}.", nameof(x));
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != weight.shape[0]))
            throw new ArgumentException($"Linear bias must be ({weight.shape[0]}); got [{string.Join(", ", bias.shape)}].", nameof(bias));
    }
}
