// Identity in the forward whose backward hands on a contiguous gradient. torch._grouped_mm's backward
// rejects non-contiguous incoming gradients (e.g. the stride-0 gradient of .sum()), so its output goes
// through this.
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Precision;

internal sealed class ContiguousGrad : SingleTensorFunction<ContiguousGrad>
{
    public override string Name => "ContiguousGrad";

    public override Tensor forward(AutogradContext ctx, params object[] vars) => (Tensor)vars[0];

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        var g = grad_output.contiguous();                 // always a new wrapper, even when already contiguous
        return AutogradReturns.Return([grad_output], [g]);
    }
}
