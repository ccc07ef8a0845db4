// Grouped expert GEMMs: rows of x are grouped by expert (counts[e] rows for expert e) and multiplied by that
// expert's weight. CUDA: one torch._grouped_mm (fp32/bf16, no host sync) or the FP8 per-expert recipe.
// CPU: one GEMM per non-empty expert (exact, and as fast as the grouped kernel at these sizes).
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using PrecisionMode = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Model;

public static class ExpertCompute
{
    /// <summary>x (R, K) grouped by expert, w (E, N, K), counts (E) on x's device summing to R -> (R, N).
    /// hostCounts: the same counts on the host when already known (CPU path), else null.</summary>
    public static Tensor GroupedLinear(Tensor x, Tensor w, Tensor counts, long[]? hostCounts, PrecisionMode precision)
    {
        if (precision == PrecisionMode.Fp8)
            return Fp8.GroupedLinear(x, w, counts, PrecisionMode.Fp8);
        if (x.device_type == DeviceType.CUDA)
            return Fp8.GroupedLinear(x, w, counts, x.dtype == ScalarType.BFloat16 ? PrecisionMode.Bf16 : PrecisionMode.Fp32);
        return Loop(x, w, hostCounts ?? counts.cpu().data<long>().ToArray());
    }

    private static Tensor Loop(Tensor x, Tensor w, long[] counts)
    {
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>(counts.Length);
        long offset = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] == 0) continue;
            var xe = x.narrow(0, offset, counts[e]);                                 // (c_e, K)
            parts.Add(LinearCompute.Apply(xe, w[e], null));                          // (c_e, N)
            offset += counts[e];
        }
        var y = parts.Count > 0 ? cat(parts, 0) : zeros(0, w.shape[1], dtype: x.dtype, device: x.device);
        return y.MoveToOuterDisposeScope();
    }
}
