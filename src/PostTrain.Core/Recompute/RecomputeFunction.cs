// The autograd node of one recompute region (ActivationRecompute.Run). vars: [RecomputeRegion, inputs..., parameters...].
//   forward (autograd off): outputs = fn(inputs) ++ the tape's side outputs; saves the non-null inputs and the tape's
//            kept tensors; undefined incoming gradients stay undefined (no zero tensors materialised).
//   backward: the saved inputs that required a gradient become fresh leaves; fn runs again with autograd on under a
//            replaying tape; autograd.backward(outputs with a defined incoming gradient, inputs: leaves ++ parameters)
//            accumulates the parameters' gradients into their .grad (the node returns none for them) and leaves the
//            inputs' gradients on the leaves, which the node returns (null where unused). The returned tensors are held
//            as AutogradReturns describes.
using PostTrain.Core.Precision;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Recompute;

/// <summary>One region call: fn, which inputs are present and need a gradient, the trainable parameters, and the first
/// pass's tape and output count (set by forward).</summary>
internal sealed class RecomputeRegion(Func<Tensor?[], Tensor[]> fn, bool[] present, bool[] needsGrad, Parameter[] parameters)
{
    public Func<Tensor?[], Tensor[]> Fn => fn;
    public bool[] Present => present;
    public bool[] NeedsGrad => needsGrad;
    public Parameter[] Parameters => parameters;
    public RecomputeTape? FirstPass { get; set; }
    public int MainOutputs { get; set; }
}

internal sealed class RecomputeFunction : MultiTensorFunction<RecomputeFunction>
{
    public override string Name => "ActivationRecompute";

    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var region = (RecomputeRegion)vars[0];
        int n = region.Present.Length;
        var inputs = new Tensor?[n];
        for (int i = 0; i < n; i++) inputs[i] = vars[1 + i] as Tensor;
        using var scope = NewDisposeScope();
        var tape = RecomputeTape.FirstPass();
        region.FirstPass = tape;
        Tensor[] main;
        using (tape.Enter()) main = region.Fn(inputs);
        region.MainOutputs = main.Length;
        scope.MoveToOuter(main);
        ctx.save_for_backward([.. inputs.Where(t => t is not null)!, .. tape.Kept]);
        ctx.save_data("region", region);
        ctx.set_materialize_grads(false);
        return [.. main, .. tape.SideOutputs];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grad_outputs)
    {
        AutogradReturns.ReleasePrevious();
        var region = (RecomputeRegion)ctx.get_data("region");
        int n = region.Present.Length;
        var result = new Tensor?[1 + n + region.Parameters.Length];
        using (var scope = NewDisposeScope())
        {
            var saved = ctx.get_saved_variables();
            var inputs = new Tensor?[n];
            var leaves = new List<(int Index, Tensor Leaf)>();
            int s = 0;
            for (int i = 0; i < n; i++)
            {
                if (!region.Present[i]) continue;
                var t = saved[s++];
                if (region.NeedsGrad[i])
                {
                    t = t.detach().requires_grad_(true);
                    leaves.Add((i, t));
                }
                inputs[i] = t;
            }
            using var tape = RecomputeTape.Replay(saved.Skip(s).ToList());
            Tensor[] outputs;
            using (enable_grad())
            using (tape.Enter())
                outputs = [.. region.Fn(inputs), .. tape.SideOutputs];
            ActivationRecompute.CountReplay();
            if (outputs.Length != grad_outputs.Count)
                throw new InvalidOperationException($"recompute: the replay made {outputs.Length} outputs, the first pass {grad_outputs.Count}");

            var ys = new List<Tensor>();
            var gs = new List<Tensor>();
            for (int i = 0; i < outputs.Length; i++)
                if (!grad_outputs[i].IsInvalid && outputs[i].requires_grad)
                {
                    ys.Add(outputs[i]);
                    gs.Add(grad_outputs[i]);
                }
            var wrt = leaves.Select(l => l.Leaf).Concat(region.Parameters).ToList();
            if (ys.Count > 0 && wrt.Count > 0)
            {
                // backward (not grad: TorchSharp's native grad call lets a libtorch error, an out-of-memory in the replay
                // say, escape as an uncatchable C++ exception): the parameters' gradients accumulate into .grad here, as
                // the engine would accumulate them, before this node returns; the inputs' come back from the leaves
                TorchSharp.torch.autograd.backward(ys, gs, inputs: wrt);
                foreach (var (index, leaf) in leaves)
                    if (leaf.grad is { IsInvalid: false } g)
                    {
                        result[1 + index] = g;
                        scope.Detach(g);
                    }
            }
        }
        return AutogradReturns.Return(grad_outputs, [.. result]);
    }
}
