// The one place where linear layers compute, so precision (fp32, bf16, FP8) is chosen in one spot.
// fp32 / bf16: the matmul runs in the activation's dtype (weights are cast from their fp32 masters).
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public static class LinearCompute
{
    /// <summary>x (..., in), w (out, in), b (out) -> (..., out).</summary>
    public static Tensor Apply(Tensor x, Tensor w, Tensor? b)
    {
        var wc = w.dtype == x.dtype ? w : w.to(x.dtype);
        var bc = b is null ? null : (b.dtype == x.dtype ? b : b.to(x.dtype));
        return nn.functional.linear(x, wc, bc);
    }
}
