// The routed experts' SwiGLU FFN in FP8 as one autograd function, y = down(silu(gate(x)) * up(x)) for rows sorted by
// expert, kept in the 128-aligned expert layout (Fp8ExpertLayout) from entry to exit. Against three
// Fp8AlignedGroupedFunction calls with the SwiGLU between (the same recipe and the same numbers, see the tests):
//   the layout is built once, not three times; x is scattered and quantised once for gate and up, and re-quantised
//   transposed once for both of their weight gradients; the SwiGLU output goes into the down GEMM and its gradient
//   comes back from it without a gather and a scatter each way; dx of gate and up is summed before one gather.
// Forward (G = 128-row-block grouped FP8 GEMM, Q = 1x128 quantisation along the contraction):
//   xp = scatter(x); g = G(Q(xp), Wg); u = G(Q(xp), Wu); h = silu(g) u; y = gather(G(Q(h), Wd))
// Backward from dy: dyp = scatter(dy); dh = G(Q(dyp), Wd^T); (dg, du) = SwiGLU'(g, u) dh;
//   dx = gather(G(Q(dg), Wg^T) + G(Q(du), Wu^T)); dWd = dyp^T h, dWg = dg^T x, dWu = du^T x (k-grouped FP8 GEMMs
//   over each expert's token segment, h and x re-quantised from their saved FP8 copies).
// Saved for backward: FP8 x and h with their scales, g and u (x's dtype, padded rows), the transposed FP8 weights.
using PostTrain.Core.Kernels;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Precision;

internal sealed class Fp8ExpertsFunction : MultiTensorFunction<Fp8ExpertsFunction>
{
    public override string Name => "Fp8Experts";

    private sealed record Dims(long H, long I, ScalarType XType, ScalarType WType, IFp8Kernels Kernels, IFusedKernels Fused,
        long Rows, bool Identity);

    // vars: x (T, H) sorted by expert, gate (E, I, H), up (E, I, H), down (E, H, I), counts (E) integer on x's device,
    // fp8 kernels, fused kernels (the SwiGLU).
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        Tensor gate = (Tensor)vars[1], up = (Tensor)vars[2], down = (Tensor)vars[3], counts = (Tensor)vars[4];
        var k = (IFp8Kernels)vars[5];
        var fused = (IFusedKernels)vars[6];
        long t = x.shape[0], h = x.shape[1], inter = gate.shape[1];

        using var scope = NewDisposeScope();
        var layout = Fp8ExpertLayout.Build(counts, t);                                        // saved below
        var (qx, sx) = k.QuantRows(layout.Scatter(x));                                         // (Rows, Hp)
        var (qg, sg, qgT, sgT) = Fp8WeightCache.QuantBlocksBoth(k, gate);
        var (qu, su, quT, suT) = Fp8WeightCache.QuantBlocksBoth(k, up);
        var (qd, sd, qdT, sdT) = Fp8WeightCache.QuantBlocksBoth(k, down);
        var g = Fp8GroupedSteps.Times(k, qx, sx, qg, sg, layout.BlockExpert, inter, x.dtype).contiguous();   // (Rows, I)
        var u = Fp8GroupedSteps.Times(k, qx, sx, qu, su, layout.BlockExpert, inter, x.dtype).contiguous();
        var (qh, sh) = k.QuantRows(fused.SwiGluForward(g, u));                                 // (Rows, Ip)
        var y = layout.Gather(k.GemmMGrouped(qh, sh, qd, sd, layout.BlockExpert), h).to(x.dtype);   // (T, H)

        ctx.save_for_backward([qx, sx, qh, sh, g, u, qgT, sgT, quT, suT, qdT, sdT, layout.Destination, layout.BlockExpert, layout.Segments]);
        ctx.save_data("dims", new Dims(h, inter, x.dtype, gate.dtype, k, fused, layout.Rows, layout.Identity));
        scope.MoveToOuter(qx, sx, qh, sh, g, u, qgT, sgT, quT, suT, qdT, sdT, y);
        scope.MoveToOuter(layout.Destination, layout.BlockExpert, layout.Segments);
        return [y];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grad_outputs)
    {
        AutogradReturns.ReleasePrevious();
        var d = (Dims)ctx.get_data("dims");
        var k = d.Kernels;
        Tensor dx, dGate, dUp, dDown;
        using (var scope = NewDisposeScope())
        {
            var s = ctx.get_saved_variables();
            Tensor qx = s[0], sx = s[1], qh = s[2], sh = s[3], g = s[4], u = s[5];
            Tensor qgT = s[6], sgT = s[7], quT = s[8], suT = s[9], qdT = s[10], sdT = s[11];
            Tensor destination = s[12], blockExpert = s[13], segments = s[14];

            var dyp = Fp8ExpertLayout.Scatter(grad_outputs[0], destination, d.Rows, d.Identity);     // (Rows, H)
            var dh = Fp8GroupedSteps.Times(k, dyp, qdT, sdT, blockExpert, d.I, d.XType);              // (Rows, I)
            dDown = Fp8GroupedSteps.WeightGrad(k, dyp, k.RequantColumns(qh, sh), segments, d.H, d.I, d.WType);
            var (dg, du) = d.Fused.SwiGluBackward(dh.contiguous(), g, u);

            var dxp = Fp8GroupedSteps.Times(k, dg, qgT, sgT, blockExpert, d.H, d.XType)
                      + Fp8GroupedSteps.Times(k, du, quT, suT, blockExpert, d.H, d.XType);
            dx = Fp8ExpertLayout.Gather(dxp, destination, d.H, d.Identity);                         // (T, H)
            var xT = k.RequantColumns(qx, sx);                                                       // shared by dWg, dWu
            dGate = Fp8GroupedSteps.WeightGrad(k, dg, xT, segments, d.I, d.H, d.WType);
            dUp = Fp8GroupedSteps.WeightGrad(k, du, xT, segments, d.I, d.H, d.WType);
            scope.Detach(dx, dGate, dUp, dDown);
        }
        return AutogradReturns.Return(grad_outputs, [dx, dGate, dUp, dDown, null, null, null]);
    }
}
