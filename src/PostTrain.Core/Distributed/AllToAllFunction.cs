// All-to-all with variable split sizes as an autograd function: forward sends sendRows[r] rows of x to rank r and
// returns the recvRows[r] rows from each rank r; backward is the reverse exchange of the gradient (what was received
// from rank r goes back to rank r). Used for expert parallelism's dispatch and combine.
using PostTrain.Core.Precision;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Distributed;

internal sealed class AllToAllFunction : SingleTensorFunction<AllToAllFunction>
{
    public override string Name => "AllToAllV";

    private sealed record Splits(ProcessGroup Group, long[] Send, long[] Recv);

    // vars: x (sum(send), ...), group, send long[], recv long[]
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var s = new Splits((ProcessGroup)vars[1], (long[])vars[2], (long[])vars[3]);
        ctx.save_data("splits", s);
        using var noGrad = no_grad();
        return s.Group.AllToAllV(x.contiguous(), s.Send, s.Recv);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        var s = (Splits)ctx.get_data("splits");
        Tensor g;
        using (no_grad()) g = s.Group.AllToAllV(grad_output.contiguous(), s.Recv, s.Send);
        return AutogradReturns.Return([grad_output], [g, null, null, null]);   // no gradient for the group and splits
    }

    public static Tensor Exchange(Tensor x, ProcessGroup group, long[] send, long[] recv) => apply(x, group, send, recv);
}
