// Grouped expert GEMMs: rows of x are grouped by expert (counts[e] rows for expert e) and multiplied by that
// expert's weight. This is the loop fallback (one GEMM per non-empty expert); grouped kernels plug in here.
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public static class ExpertCompute
{
    /// <summary>x (R, K) grouped by expert, w (E, N, K), counts (E) summing to R -> (R, N).</summary>
    public static Tensor GroupedLinear(Tensor x, Tensor w, long[] counts)
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
