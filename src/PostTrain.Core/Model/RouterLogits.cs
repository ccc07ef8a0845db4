// The router's logits in fp32, as DeepSeek-V3 and transformers compute them: x.float() @ W.float()^T. The plain ops
// (linear over two fp32 casts) save the fp32 copy of x for the weight gradient: twice the bytes of the bf16 activation
// the MoE layer already keeps (its normed input), per MoE layer and token (3 KB at hidden 768, 8 KB at 2,048). This
// function saves x in its own dtype and casts it again in backward; the arithmetic is the same (the casts are exact),
// so values and gradients equal the plain ops' bit for bit (tested).
//   forward   logits = x32 W32^T                   (N, E) fp32
//   backward  dx = (dlogits W32) in x's dtype,  dW = (dlogits^T x32) in W's dtype
// Simplification: both gradients are computed whether or not an input needs one (TorchSharp does not expose
// needs_input_grad); the router's are two small GEMMs.
using PostTrain.Core.Precision;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Model;

internal sealed class RouterLogits : SingleTensorFunction<RouterLogits>
{
    public override string Name => "RouterLogits";

    /// <summary>x (N, H) in any float dtype, w (E, H) -> (N, E) fp32; saves x and w as they are.</summary>
    public static Tensor Apply(Tensor x, Tensor w) =>
        x.requires_grad || w.requires_grad ? apply(x, w) : Fp32Linear(x, w);

    private static Tensor Fp32Linear(Tensor x, Tensor w) => nn.functional.linear(x.to(ScalarType.Float32), w.to(ScalarType.Float32));

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        using var scope = NewDisposeScope();
        Tensor y;
        using (no_grad())
            y = Fp32Linear(x, w);
        ctx.save_for_backward([x, w]);
        return y.MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        Tensor dx, dw;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var saved = ctx.get_saved_variables();
            Tensor x = saved[0], w = saved[1];
            var g = grad_output.to(ScalarType.Float32);                                     // (N, E)
            dx = g.mm(w.to(ScalarType.Float32)).to(x.dtype);                                 // (N, H)
            dw = g.t().mm(x.to(ScalarType.Float32)).to(w.dtype);                            // (E, H)
            scope.Detach(dx, dw);
        }
        return AutogradReturns.Return([grad_output], [dx, dw]);
    }
}
