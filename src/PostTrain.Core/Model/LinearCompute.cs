// The one place where the model's linear layers compute, so precision is chosen in one spot.
//   Fp32 / Bf16: the matmul runs in the activation's dtype (weights cast from their fp32 masters).
//   Fp8: DeepSeek-V3's fine-grained FP8 recipe (Precision/LinearOps): all three GEMMs in E4M3 with fp32 accumulation.
// The output head, embedding, router, norms and attention core never come here with Fp8 (kept in higher precision).
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using PrecisionMode = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Model;

public static class LinearCompute
{
    /// <summary>x (..., in), w (out, in), b (out) -> (..., out).</summary>
    public static Tensor Apply(Tensor x, Tensor w, Tensor? b, PrecisionMode precision = PrecisionMode.Fp32)
    {
        if (precision == PrecisionMode.Fp8) return LinearOps.Linear(x, w, b, PrecisionMode.Fp8);
        var wc = w.dtype == x.dtype ? w : w.to(x.dtype);
        var bc = b is null ? null : (b.dtype == x.dtype ? b : b.to(x.dtype));
        return nn.functional.linear(x, wc, bc);
    }
}
