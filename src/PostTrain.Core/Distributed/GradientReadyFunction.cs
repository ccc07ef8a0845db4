// Gradient-ready signal without tensor hooks (TorchSharp 0.107 has none): an autograd function that is the identity
// in forward (y = x) and, in backward, calls a callback before passing the gradient through (dL/dx = dL/dy). Put on
// the input of a block of layers, its backward runs once every operation of the block has run backward, and libtorch
// accumulates a parameter's gradient (AccumulateGrad, the highest-priority node of the engine) as soon as the
// operation using it has produced it: at the callback, the block's parameter gradients of this backward pass are in
// .grad (DataParallelOptimizer starts their all-reduce then; the dist worker's `overlap` scenario checks it).
// The callback runs on the thread running backward (the caller's on the CPU, libtorch's device thread on CUDA).
using PostTrain.Core.Precision;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Distributed;

public sealed class GradientReadyFunction : SingleTensorFunction<GradientReadyFunction>
{
    public override string Name => "GradientReady";

    // vars: x, callback Action
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("callback", vars[1]);
        return ((Tensor)vars[0]).view_as((Tensor)vars[0]);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        ((Action)ctx.get_data("callback"))();
        var g = grad_output.detach();
        return AutogradReturns.Return([grad_output], [g, null]);
    }

    /// <summary>x unchanged; onGradient() runs when the gradient w.r.t. x arrives in backward.</summary>
    public static Tensor Mark(Tensor x, Action onGradient) => apply(x, onGradient);
}
