// The GEMM steps both grouped FP8 functions (Fp8AlignedGroupedFunction, Fp8ExpertsFunction) take in the padded expert
// layout (Fp8ExpertLayout): a row-quantised operand through the m-grouped GEMM, and a weight gradient through the
// k-grouped GEMM over each expert's token segment.
using PostTrain.Core.Kernels;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

internal static class Fp8GroupedSteps
{
    /// <summary>a (Rows, K) quantised in 1x128 tiles along K, times the expert blocks qb (E, Np, Kp) of each row's
    /// 128-row block: the first <paramref name="width"/> columns, in <paramref name="dtype"/>.</summary>
    public static Tensor Times(IFp8Kernels k, Tensor a, Tensor qb, Tensor sb, Tensor blockExpert, long width, ScalarType dtype)
    {
        var (qa, sa) = k.QuantRows(a);
        return Times(k, qa, sa, qb, sb, blockExpert, width, dtype);
    }

    /// <summary>The same for an operand already quantised (qa, sa).</summary>
    public static Tensor Times(IFp8Kernels k, Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor blockExpert, long width,
        ScalarType dtype) =>
        k.GemmMGrouped(qa, sa, qb, sb, blockExpert).narrow(1, 0, width).to(dtype);

    /// <summary>dW_e = dy_e^T a_e over each expert's token segment, (E, n, kk) in <paramref name="wtype"/>: dy (Rows, N)
    /// is quantised along the tokens here; (qaT, saT) is a already quantised that way (RequantColumns of the saved FP8
    /// activations). bf16 weights get the GEMM's output in bf16 directly (rounded once, as the conversion did).</summary>
    public static Tensor WeightGrad(IFp8Kernels k, Tensor dy, (Tensor Q, Tensor Scale) aT, Tensor segments, long n, long kk,
        ScalarType wtype)
    {
        var (qdyT, sdyT) = k.QuantColumns(dy);
        var outType = wtype == ScalarType.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        return k.GemmKGrouped(qdyT, sdyT, aT.Q, aT.Scale, segments, outType).narrow(1, 0, n).narrow(2, 0, kk).to(wtype);
    }
}
