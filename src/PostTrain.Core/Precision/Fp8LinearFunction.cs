// The FP8 linear layer as a custom autograd function (DeepSeek-V3 recipe): y = x W^T + b with all three
// GEMMs in FP8 E4M3 and FP32 accumulation.
//   Fprop  y  = x W^T : x per 1x128 tile along K, W per 128x128 block.
//   Dgrad  dX = dY W  : dY per 1x128 tile along N; W^T's blocks are W's blocks transposed (exact, blocks are square).
//   Wgrad  dW = dY^T X: both per 1x128 tile along the tokens M; X comes from the FP8 copy saved by the forward
//                       (dequantised, transposed, re-quantised, as DeepSeek-V3 does), never from an FP32 copy.
// Saved for backward: the FP8 input and the FP8 weight with their scales. The bias and its gradient stay FP32.
// Simplification: all gradients are computed whether or not an input needs one (TorchSharp does not expose
// needs_input_grad).
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Precision;

internal sealed class Fp8LinearFunction : MultiTensorFunction<Fp8LinearFunction>
{
    public override string Name => "Fp8Linear";

    private sealed record Dims(long M, long N, long K, ScalarType XType, ScalarType WType, ScalarType? BiasType);

    // vars: x (M, K), w (N, K), bias (N) or null.
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var bias = vars[2] as Tensor;
        long m = x.shape[0], k = x.shape[1], n = w.shape[0];
        var (rowMultiple, contraction) = Fp8Gemm.Alignment(x.device);

        using var scope = NewDisposeScope();
        var (qx, sx) = Fp8.QuantizeTiles(x, rowMultiple, contraction);                     // (Mp, Kp), (Mp, Kp/128)
        var (qw, sw) = Fp8.QuantizeBlocks(w, contraction, contraction);                    // (Np, Kp): N is Dgrad's contraction
        var y = Fp8Gemm.Multiply(qx, sx, qw, sw, Fp8Layout.Blocks128x128, m, n);          // (M, N) fp32
        if (bias is not null)
            y = y + bias.to(ScalarType.Float32);
        y = y.to(x.dtype);

        ctx.save_for_backward([qx, sx, qw, sw]);
        ctx.save_data("dims", new Dims(m, n, k, x.dtype, w.dtype, bias?.dtype));
        scope.MoveToOuter(qx, sx, qw, sw, y);
        return [y];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grad_outputs)
    {
        AutogradReturns.ReleasePrevious();
        var d = (Dims)ctx.get_data("dims");
        Tensor dx, dw;
        Tensor? db = null;
        using (var scope = NewDisposeScope())
        {
            var saved = ctx.get_saved_variables();
            Tensor qx = saved[0], sx = saved[1], qw = saved[2], sw = saved[3];
            var dy = grad_outputs[0];                                                      // (M, N)
            var (rowMultiple, contraction) = Fp8Gemm.Alignment(dy.device);

            var (qdy, sdy) = Fp8.QuantizeTiles(dy, rowMultiple, contraction);             // (Mp, Np) tiles along N
            dx = Fp8Gemm.Multiply(qdy, sdy, qw.t().contiguous(), sw.t().contiguous(),
                Fp8Layout.Blocks128x128, d.M, d.K).to(d.XType);                           // (M, K)

            var (qdyT, sdyT) = Fp8.QuantizeTiles(dy.t(), rowMultiple, contraction);       // (N', Mp) tiles along M
            var xHat = Fp8.DequantizeActTiles(qx, sx, d.K)[..(int)d.M];                   // (M, K) from the saved FP8
            var (qxT, sxT) = Fp8.QuantizeTiles(xHat.t(), rowMultiple, contraction);       // (K', Mp) tiles along M
            dw = Fp8Gemm.Multiply(qdyT, sdyT, qxT, sxT, Fp8Layout.Tiles1x128, d.N, d.K).to(d.WType); // (N, K)

            if (d.BiasType is ScalarType bt)
                db = dy.to(ScalarType.Float32).sum(dim: 0).to(bt);                              // (N)
            scope.Detach(dx, dw);
            if (db is not null)
                scope.Detach(db);
        }
        return AutogradReturns.Return(grad_outputs, [dx, dw, db]);
    }
}
