// MoE experts' linear layers at a chosen Precision: y[t] = x[t] W_e^T for the expert e that token t is
// sorted into. x (T, K) sorted by expert, w (E, N, K), counts (E,) integer tokens per expert (sum T).
//   Fp32 / Bf16: torch._grouped_mm through TorchScript (bf16 casts for Bf16, result in x's dtype).
//   Fp8 on CUDA with the native FP8 kernels (Fp8Kernels.For: built, loaded, self-checked): Fp8AlignedGroupedFunction,
//        one grouped launch per GEMM over all experts, counts stay on the device (no sync).
//   Fp8 otherwise: Fp8GroupedFunction, a per-expert loop of the blockwise FP8 recipe (reads counts to the host).
// Counts are validated against T on the CPU; on CUDA the _grouped_mm path does not read them back (no
// sync), so a wrong sum there is the caller's bug.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public static partial class Fp8
{
    public static Tensor GroupedLinear(Tensor x, Tensor w, Tensor counts, Precision p)
    {
        CheckGrouped(x, w, counts);
        if (p == Precision.Fp8)
            return GroupedLinearFp8(x, w, counts, Kernels.Fp8Kernels.For(x));
        if (p is not (Precision.Fp32 or Precision.Bf16))
            throw new ArgumentOutOfRangeException(nameof(p), p, "Unknown precision.");
        if (x.device_type != DeviceType.CUDA)
            HostCounts(counts, x.shape[0]);

        var offsets = counts.to(x.device).cumsum(0, ScalarType.Int32);                      // (E,) row ends
        var a = p == Precision.Bf16 ? x.to(ScalarType.BFloat16) : x;                         // (T, K)
        var b = (p == Precision.Bf16 ? w.to(ScalarType.BFloat16) : w).transpose(-2, -1);     // (E, K, N)
        var y = PrecisionScripts.GroupedMm(a, b, offsets).to(x.dtype);                      // (T, N)
        return ContiguousGrad.apply(y);
    }

    /// <summary>The FP8 experts on a chosen backend: <paramref name="kernels"/> (one grouped launch per GEMM, counts
    /// stay on the device), or the per-expert loop when null (reads counts to the host).</summary>
    public static Tensor GroupedLinearFp8(Tensor x, Tensor w, Tensor counts, Kernels.IFp8Kernels? kernels)
    {
        CheckGrouped(x, w, counts);
        return kernels is not null
            ? Fp8AlignedGroupedFunction.apply(x, w, counts.to(x.device), kernels)[0]
            : Fp8GroupedFunction.apply(x, w, HostCounts(counts, x.shape[0]))[0];
    }

    /// <summary>Whether MoE experts in FP8 run as one function (ExpertsFp8) when the native kernels are on; false with
    /// POSTTRAIN_FP8_FUSED_EXPERTS=0 (three grouped linears: for A/B measurement and as a fallback).</summary>
    public static bool FusedExperts { get; set; } = Environment.GetEnvironmentVariable("POSTTRAIN_FP8_FUSED_EXPERTS") != "0";

    /// <summary>The routed experts' SwiGLU FFN in FP8 on <paramref name="kernels"/>: down(silu(gate(x)) * up(x)) for x
    /// (T, H) sorted by expert, gate/up (E, I, H), down (E, H, I), counts (E) on the device (Fp8ExpertsFunction: one
    /// padded layout for the whole FFN). <paramref name="fused"/> computes the SwiGLU (the reference formulas when null).</summary>
    public static Tensor ExpertsFp8(Tensor x, Tensor gate, Tensor up, Tensor down, Tensor counts, Kernels.IFp8Kernels kernels,
        Kernels.IFusedKernels? fused = null)
    {
        CheckGrouped(x, gate, counts);
        CheckGrouped(x, up, counts);
        if (down.dim() != 3 || down.shape[0] != gate.shape[0] || down.shape[1] != x.shape[1] || down.shape[2] != gate.shape[1])
            throw new ArgumentException($"Experts down weight must be ({gate.shape[0]}, {x.shape[1]}, {gate.shape[1]}); got [{string.Join(", ", down.shape)}].", nameof(down));
        return Fp8ExpertsFunction.apply(x, gate, up, down, counts.to(x.device), kernels,
            fused ?? Kernels.ReferenceFusedKernels.Instance)[0];
    }

    private static void CheckGrouped(Tensor x, Tensor w, Tensor counts)
    {
        if (x.dim() != 2)
            throw new ArgumentException($"GroupedLinear input x must be (T, K); got [{string.Join(", ", x.shape)}].", nameof(x));
        if (w.dim() != 3 || w.shape[2] != x.shape[1])
            throw new ArgumentException($"GroupedLinear weight w must be (E, N, {x.shape[1]}); got [{string.Join(", ", w.shape)}].", nameof(w));
        if (counts.dim() != 1 || counts.shape[0] != w.shape[0] || counts.is_floating_point())
            throw new ArgumentException($"GroupedLinear counts must be an integer tensor ({w.shape[0]}); got {counts.dtype} [{string.Join(", ", counts.shape)}].", nameof(counts));
    }

    private static long[] HostCounts(Tensor counts, long tokens)
    {
        var c = counts.to(ScalarType.Int64).cpu().data<long>().ToArray();
        if (c.Any(v => v < 0) || c.Sum() != tokens)
            throw new ArgumentException($"GroupedLinear counts [{string.Join(", ", c)}] must be non-negative and sum to the {tokens} rows of x.", nameof(counts));
        return c;
    }
}
