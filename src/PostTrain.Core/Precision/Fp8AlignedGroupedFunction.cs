// FP8 grouped linear for MoE experts without a per-expert loop or a host sync: the rows sorted by expert are moved into
// the 128-aligned expert layout (Fp8ExpertLayout), and each of the three GEMMs is one grouped launch over all experts
// (IFp8Kernels: the native Triton GEMMs on the GPU, the torch reference elsewhere).
//   forward  y = x W_e^T          qx = Q_1x128(x) along K, qW = Q_128x128(W):     GemmMGrouped(qx, qW)
//   Dgrad    dx = dy W_e          qdy = Q_1x128(dy) along N, qW^T (the same blocks, transposed, written by the
//                                 forward's quantiser in the same pass): GemmMGrouped(qdy, qW^T)
//   Wgrad    dW_e = dy_e^T x_e    Q_1x128 along the tokens of dy^T and of dequant(qx)^T (RequantColumns: the
//                                 forward's FP8 activations re-quantised transposed, no FP32 copy): GemmKGrouped
// The quantisation is exactly Fp8GroupedFunction's (the per-expert loop it replaces on the GPU): the same tiles, since
// every expert's segment starts on a 128-row boundary; padding rows are zeros and contribute nothing. Saved for
// backward: the FP8 activations and weights with their scales (as DeepSeek-V3 keeps them), and the layout.
using PostTrain.Core.Kernels;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Precision;

internal sealed class Fp8AlignedGroupedFunction : MultiTensorFunction<Fp8AlignedGroupedFunction>
{
    public override string Name => "Fp8AlignedGroupedLinear";

    /// <summary>Stands for the counts of a dense layer (one expert, all rows).</summary>
    internal static readonly object DenseRows = new();

    private sealed record Dims(long N, long K, ScalarType XType, ScalarType WType, IFp8Kernels Kernels, long Rows, bool Identity, bool Dense);

    // vars: x (T, K) sorted by expert, w (E, N, K), counts (E) integer on x's device or DenseRows with w (N, K) (a dense
    // layer: one expert holding every row, the layout known on the host; w is the parameter itself, so its
    // quantisation can come from Fp8WeightCache), kernels (IFp8Kernels).
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var kernels = (IFp8Kernels)vars[3];
        bool dense = vars[2] is not Tensor;
        long t = x.shape[0], k = x.shape[1], n = w.shape[^2];

        using var scope = NewDisposeScope();
        var layout = vars[2] is Tensor counts ? Fp8ExpertLayout.Build(counts, t)              // saved below: not disposed here
            : Fp8ExpertLayout.Single(t, x.device);
        var (qx, sx) = kernels.QuantRows(layout.Scatter(x));                                   // (Rows, Kp)
        var (qw, sw, qwT, swT) = Fp8WeightCache.QuantBlocksBoth(kernels, w);                   // (E, Np, Kp), (E, Kp, Np)
        if (dense) (qw, sw, qwT, swT) = (qw.unsqueeze(0), sw.unsqueeze(0), qwT.unsqueeze(0), swT.unsqueeze(0));
        var yp = kernels.GemmMGrouped(qx, sx, qw, sw, layout.BlockExpert);                     // (Rows, Np)
        var y = layout.Gather(yp, n).to(x.dtype);                                              // (T, N)

        ctx.save_for_backward([qx, sx, qwT, swT, layout.Destination, layout.BlockExpert, layout.Segments]);
        ctx.save_data("dims", new Dims(n, k, x.dtype, w.dtype, kernels, layout.Rows, layout.Identity, dense));
        scope.MoveToOuter(qx, sx, qwT, swT, y);
        scope.MoveToOuter(layout.Destination, layout.BlockExpert, layout.Segments);
        return [y];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grad_outputs)
    {
        AutogradReturns.ReleasePrevious();
        var d = (Dims)ctx.get_data("dims");
        Tensor dx, dw;
        using (var scope = NewDisposeScope())
        {
            var saved = ctx.get_saved_variables();
            Tensor qx = saved[0], sx = saved[1], qwT = saved[2], swT = saved[3];
            Tensor destination = saved[4], blockExpert = saved[5], segments = saved[6];
            var dy = grad_outputs[0];                                                          // (T, N)
            var dyp = Fp8ExpertLayout.Scatter(dy, destination, d.Rows, d.Identity);                // (Rows, N)

            var dxp = Fp8GroupedSteps.Times(d.Kernels, dyp, qwT, swT, blockExpert, d.K, d.XType);  // (Rows, K)
            dx = Fp8ExpertLayout.Gather(dxp, destination, d.K, d.Identity);                     // (T, K)
            dw = Fp8GroupedSteps.WeightGrad(d.Kernels, dyp, d.Kernels.RequantColumns(qx, sx), segments, d.N, d.K, d.WType);   // (E, N, K)
            if (d.Dense) dw = dw.squeeze(0);                                                   // (N, K): the dense weight
            scope.Detach(dx, dw);
        }
        return AutogradReturns.Return(grad_outputs, [dx, dw, null, null]);
    }
}
