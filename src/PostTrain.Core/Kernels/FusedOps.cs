// RMSNorm and SwiGLU as single fused operations with their own backward, over a kernel backend (IFusedKernels): the
// native CUDA kernels (native/kernels, NativeFusedKernels) on the GPU, or ReferenceFusedKernels (the same formulas in
// torch ops) which the CPU tests use to check the autograd wiring and the GPU self-check uses as the reference.
//   RMSNorm:  y = x r w, r = (mean_D x^2 + eps)^-1/2 per row;  with xh = x r, g = dy w:
//             dx = r (g - xh mean_D(g xh)),  dw = sum_rows dy xh
//   SwiGLU:   h = silu(a) b, s = sigmoid(a);  da = dh b s (1 + a (1 - s)),  db = dh silu(a)
//   Softmax cross-entropy (the LM head's loss, ChunkedHeadLoss): per row of logits z with label l (-100 = ignored),
//             loss = logsumexp(z) - z_l (fp32), dz = softmax(z) - onehot(l) (z's dtype); both zero on ignored rows.
// Math in fp32, one rounding to the activation dtype. Without autograd (decode, no_grad) the forward kernel runs alone.
using PostTrain.Core.Precision;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Kernels;

/// <summary>The fused kernels' contract. x, dy, a, b, dh: (N, D) contiguous, float32 or bfloat16; w (D) float32 or
/// bfloat16; rstd (N) float32. Outputs are in the activation dtype; dw comes back in float32.</summary>
public interface IFusedKernels
{
    (Tensor Y, Tensor Rstd) RmsNormForward(Tensor x, Tensor w, double eps);
    (Tensor Dx, Tensor Dw) RmsNormBackward(Tensor dy, Tensor x, Tensor w, Tensor rstd);
    Tensor SwiGluForward(Tensor a, Tensor b);
    (Tensor Da, Tensor Db) SwiGluBackward(Tensor dh, Tensor a, Tensor b);

    /// <summary>logits (N, V) float32/bfloat16, labels (N) int64 -> dlogits (N, V) in the logits' dtype (written over
    /// the logits when <paramref name="overwriteLogits"/>), loss (N) float32. Ignored rows (label -100) get zeros;
    /// a label outside [0, V) gets a NaN loss.</summary>
    (Tensor Dlogits, Tensor Loss) SoftmaxCrossEntropy(Tensor logits, Tensor labels, bool overwriteLogits);
}

/// <summary>The kernels' formulas in torch ops (fp32 math, one rounding).</summary>
public sealed class ReferenceFusedKernels : IFusedKernels
{
    public static readonly ReferenceFusedKernels Instance = new();

    public (Tensor Y, Tensor Rstd) RmsNormForward(Tensor x, Tensor w, double eps)
    {
        using var scope = NewDisposeScope();
        var xf = x.to(ScalarType.Float32);
        var r = rsqrt(xf.pow(2).mean([-1L]) + eps);                                    // (N)
        var y = (xf * r.unsqueeze(-1) * w.to(ScalarType.Float32)).to(x.dtype);          // (N, D)
        return (y.MoveToOuterDisposeScope(), r.MoveToOuterDisposeScope());
    }

    public (Tensor Dx, Tensor Dw) RmsNormBackward(Tensor dy, Tensor x, Tensor w, Tensor rstd)
    {
        using var scope = NewDisposeScope();
        var r = rstd.unsqueeze(-1);                                                      // (N, 1)
        var xh = x.to(ScalarType.Float32) * r;                                           // (N, D)
        var d = dy.to(ScalarType.Float32);
        var g = d * w.to(ScalarType.Float32);
        var dx = (r * (g - xh * (g * xh).mean([-1L], keepdim: true))).to(x.dtype);
        var dw = (d * xh).sum([0L]);                                                      // (D) fp32
        return (dx.MoveToOuterDisposeScope(), dw.MoveToOuterDisposeScope());
    }

    public Tensor SwiGluForward(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var af = a.to(ScalarType.Float32);
        return (af * sigmoid(af) * b.to(ScalarType.Float32)).to(a.dtype).MoveToOuterDisposeScope();
    }

    public (Tensor Da, Tensor Db) SwiGluBackward(Tensor dh, Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var af = a.to(ScalarType.Float32);
        var s = sigmoid(af);
        var g = dh.to(ScalarType.Float32);
        var da = (g * b.to(ScalarType.Float32) * s * (1 + af * (1 - s))).to(a.dtype);
        var db = (g * af * s).to(a.dtype);
        return (da.MoveToOuterDisposeScope(), db.MoveToOuterDisposeScope());
    }

    public (Tensor Dlogits, Tensor Loss) SoftmaxCrossEntropy(Tensor logits, Tensor labels, bool overwriteLogits)
    {
        using var scope = NewDisposeScope();
        long vocab = logits.shape[1];
        var ignored = labels.eq(PostTrain.Core.Model.Losses.Ignore);
        var inRange = labels.ge(0).logical_and(labels.lt(vocab));
        var safe = labels.masked_fill(inRange.logical_not(), 0).unsqueeze(1);                   // (N, 1)
        var logp = logits.log_softmax(1, ScalarType.Float32);                                    // (N, V) fp32
        var loss = (-logp.gather(1, safe).squeeze(1))
            .masked_fill(inRange.logical_not(), float.NaN).masked_fill(ignored, 0f);             // (N) fp32
        var p = logp.exp_();
        p.scatter_add_(1, safe, (-inRange.to(ScalarType.Float32)).unsqueeze(1));                 // - onehot(label)
        p.masked_fill_(ignored.unsqueeze(1), 0f);
        var d = overwriteLogits ? logits.copy_(p) : p.to(logits.dtype);
        return (d.MoveToOuterDisposeScope(), loss.MoveToOuterDisposeScope());
    }
}

public static class FusedOps
{
    /// <summary>silu(a) * b: the fused kernel where <see cref="FusedKernels.For"/> gives one (CUDA), else the plain ops.</summary>
    public static Tensor SiluMul(Tensor a, Tensor b) =>
        FusedKernels.For(a) is { } k ? SwiGlu(a, b, k) : nn.functional.silu(a) * b;

    /// <summary>RMSNorm of x (..., D) with weight w (D) through <paramref name="kernels"/>; y in x's dtype.</summary>
    public static Tensor RmsNorm(Tensor x, Tensor w, double eps, IFusedKernels kernels)
    {
        var shape = x.shape;
        var flat = x.contiguous().view(-1, shape[^1]);                                     // (N, D)
        if (!is_grad_enabled() || (!x.requires_grad && !w.requires_grad))
        {
            var (y, rstd) = kernels.RmsNormForward(flat, w.detach(), eps);
            rstd.Dispose();
            return y.view(shape);
        }
        return RmsNormFunction.apply(flat, w, eps, kernels).view(shape);
    }

    /// <summary>silu(a) * b through <paramref name="kernels"/> (a, b of one shape and dtype).</summary>
    public static Tensor SwiGlu(Tensor a, Tensor b, IFusedKernels kernels)
    {
        var shape = a.shape;
        var af = a.contiguous().view(-1, shape[^1]);
        var bf = b.contiguous().view(-1, shape[^1]);
        if (!is_grad_enabled() || (!a.requires_grad && !b.requires_grad))
            return kernels.SwiGluForward(af, bf).view(shape);
        return SwiGluFunction.apply(af, bf, kernels).view(shape);
    }
}

internal sealed class RmsNormFunction : SingleTensorFunction<RmsNormFunction>
{
    public override string Name => "FusedRMSNorm";

    // vars: x (N, D) contiguous, w (D), eps (double), kernels (IFusedKernels)
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var kernels = (IFusedKernels)vars[3];
        using var noGrad = no_grad();
        var (y, rstd) = kernels.RmsNormForward(x.detach(), w.detach(), (double)vars[2]);
        ctx.save_for_backward([x.detach(), w.detach(), rstd]);
        ctx.save_data("kernels", kernels);
        return y;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        var saved = ctx.get_saved_variables();
        var kernels = (IFusedKernels)ctx.get_data("kernels");
        Tensor dx, dw;
        using (var scope = NewDisposeScope())
        {
            (dx, dw) = kernels.RmsNormBackward(grad_output.contiguous(), saved[0], saved[1], saved[2]);
            if (dw.dtype != saved[1].dtype) dw = dw.to(saved[1].dtype);
            scope.Detach(dx, dw);
        }
        return AutogradReturns.Return([grad_output], [dx, dw, null, null]);
    }
}

internal sealed class SwiGluFunction : SingleTensorFunction<SwiGluFunction>
{
    public override string Name => "FusedSwiGLU";

    // vars: a (N, D) contiguous, b (N, D) contiguous, kernels (IFusedKernels)
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var a = ((Tensor)vars[0]).detach();
        var b = ((Tensor)vars[1]).detach();
        var kernels = (IFusedKernels)vars[2];
        using var noGrad = no_grad();
        var h = kernels.SwiGluForward(a, b);
        ctx.save_for_backward([a, b]);
        ctx.save_data("kernels", kernels);
        return h;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        var saved = ctx.get_saved_variables();
        var kernels = (IFusedKernels)ctx.get_data("kernels");
        Tensor da, db;
        using (var scope = NewDisposeScope())
        {
            (da, db) = kernels.SwiGluBackward(grad_output.contiguous(), saved[0], saved[1]);
            scope.Detach(da, db);
        }
        return AutogradReturns.Return([grad_output], [da, db, null]);
    }
}
