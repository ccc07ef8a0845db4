// FP8 grouped linear for MoE experts as a custom autograd function: tokens sorted by expert, one
// blockwise-scaled GEMM per expert for each of the three GEMMs, exactly the FP8 linear recipe applied to
// each expert's slice (Fp8LinearFunction). Activation tiles are per row, so x is quantised once for all
// experts; weights are quantised per expert (128x128 blocks never straddle two experts); Wgrad tiles run
// along each expert's own tokens.
// Simplification: a loop over experts (on CUDA one _scaled_mm per expert; _scaled_grouped_mm only offers
// rowwise scales, which is not the blockwise recipe). Expert token counts are host values.
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Precision;

internal sealed class Fp8GroupedFunction : MultiTensorFunction<Fp8GroupedFunction>
{
    public override string Name => "Fp8GroupedLinear";

    private sealed record Dims(long T, long N, long K, long[] Counts, ScalarType XType, ScalarType WType);

    // vars: x (T, K) sorted by expert, w (E, N, K), counts long[E] with sum T.
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var counts = (long[])vars[2];
        long t = x.shape[0], k = x.shape[1], n = w.shape[1];
        var (_, contraction) = Fp8Gemm.Alignment(x.device);

        using var scope = NewDisposeScope();
        var (qx, sx) = Fp8.QuantizeTiles(x, 1, contraction);                                 // (T, Kp)
        var (qw, sw) = Fp8.QuantizeBlocks(w, contraction, contraction);                      // (E, Np, Kp)
        var pieces = new List<Tensor>();
        long start = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            long c = counts[e];
            if (c > 0)
                pieces.Add(Fp8Gemm.Multiply(qx.narrow(0, start, c), sx.narrow(0, start, c), qw[e], sw[e],
                    Fp8Layout.Blocks128x128, c, n));                                          // (c, N)
            start += c;
        }
        var y = (pieces.Count == 0 ? zeros(0, n, device: x.device) : cat(pieces, 0)).to(x.dtype); // (T, N)

        ctx.save_for_backward([qx, sx, qw, sw]);
        ctx.save_data("dims", new Dims(t, n, k, counts, x.dtype, w.dtype));
        scope.MoveToOuter(qx, sx, qw, sw, y);
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
            Tensor qx = saved[0], sx = saved[1], qw = saved[2], sw = saved[3];
            var dy = grad_outputs[0];                                                         // (T, N)
            var (rowMultiple, contraction) = Fp8Gemm.Alignment(dy.device);
            var (qdy, sdy) = Fp8.QuantizeTiles(dy, 1, contraction);                           // (T, Np) tiles along N

            var dxPieces = new List<Tensor>();
            var dwPieces = new List<Tensor>();
            long start = 0;
            for (int e = 0; e < d.Counts.Length; e++)
            {
                long c = d.Counts[e];
                if (c == 0)
                {
                    dwPieces.Add(zeros(d.N, d.K, dtype: ScalarType.Float32, device: dy.device));
                    continue;
                }
                dxPieces.Add(Fp8Gemm.Multiply(qdy.narrow(0, start, c), sdy.narrow(0, start, c),
                    qw[e].t().contiguous(), sw[e].t().contiguous(), Fp8Layout.Blocks128x128, c, d.K)); // (c, K)

                var (qdyT, sdyT) = Fp8.QuantizeTiles(dy.narrow(0, start, c).t(), rowMultiple, contraction);  // (N', cp) along tokens
                var xHat = Fp8.DequantizeActTiles(qx.narrow(0, start, c), sx.narrow(0, start, c), d.K);     // (c, K)
                var (qxT, sxT) = Fp8.QuantizeTiles(xHat.t(), rowMultiple, contraction);                      // (K', cp)
                dwPieces.Add(Fp8Gemm.Multiply(qdyT, sdyT, qxT, sxT, Fp8Layout.Tiles1x128, d.N, d.K));        // (N, K)
                start += c;
            }
            dx = (dxPieces.Count == 0 ? zeros(0, d.K, device: dy.device) : cat(dxPieces, 0)).to(d.XType);   // (T, K)
            dw = stack(dwPieces, 0).to(d.WType);                                                           // (E, N, K)
            scope.Detach(dx, dw);
        }
        return AutogradReturns.Return(grad_outputs, [dx, dw, null]);
    }
}
