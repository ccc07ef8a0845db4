// Activation recompute (activation checkpointing) of one region of the forward. Run(fn, inputs, parameters) runs fn
// with autograd off, so the graph keeps none of fn's intermediate tensors: one autograd node stands for the region and
// saves only fn's tensor inputs (and what the first pass put on its RecomputeTape). In backward that node runs fn again
// on the saved inputs with autograd on (the replay; the tape gives back the same dropout masks and expert choices) and
// backpropagates the incoming gradients through it: the parameters' gradients accumulate into their .grad there (as the
// engine would accumulate them) and the inputs' gradients are the node's result. The trainable parameters are inputs of
// the node, so a region whose tensor inputs need no gradient (a frozen base model under LoRA) still runs backward and
// trains its adapters; a gradient-ready mark on the region's input fires after the region's parameter gradients are in
// .grad (they are there before the node returns).
// fn must compute the same function twice: read only its inputs, the given parameters and module constants (tensors
// it captures from outside would be gone by backward: pass them as inputs). Inputs may be null (passed through).
// Regions do not nest (Run inside a running region calls fn directly), and with autograd off or nothing to
// differentiate Run calls fn directly.
using PostTrain.Core.Model;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace PostTrain.Core.Recompute;

public static class ActivationRecompute
{
    [ThreadStatic]
    private static long replays;

    /// <summary>Region replays (backward recomputations) run on this thread so far (backward runs on the calling thread
    /// on the CPU).</summary>
    public static long ReplaysOnThisThread => replays;

    internal static void CountReplay() => replays++;

    /// <summary>fn(inputs) without keeping fn's activations for backward; recomputed in backward. Returns fn's outputs
    /// (tensors that require grad when anything in the region does).</summary>
    /// <param name="parameters">Every parameter fn uses (LoRA adapters included); frozen ones are skipped.</param>
    public static Tensor[] Run(Func<Tensor?[], Tensor[]> fn, Tensor?[] inputs, IEnumerable<Parameter> parameters)
    {
        if (!is_grad_enabled() || RecomputeTape.Current is not null) return fn(inputs);
        var trainable = parameters.Where(p => p.requires_grad).Distinct(ReferenceEqualityComparer.Instance).Cast<Parameter>().ToArray();
        if (trainable.Length == 0 && !inputs.Any(t => t is { requires_grad: true })) return fn(inputs);
        var region = new RecomputeRegion(fn, inputs.Select(t => t is not null).ToArray(),
            inputs.Select(t => t is { requires_grad: true }).ToArray(), trainable);
        var vars = new object?[1 + inputs.Length + trainable.Length];
        vars[0] = region;
        for (int i = 0; i < inputs.Length; i++) vars[1 + i] = inputs[i];
        for (int j = 0; j < trainable.Length; j++) vars[1 + inputs.Length + j] = trainable[j];
        // own scope: TorchSharp keeps an empty_like of every output of a custom function (for gradients it would
        // materialise; the region does not ask for that), freed here at once instead of living as long as the output
        using var scope = NewDisposeScope();
        List<Tensor> outputs;
        try { outputs = RecomputeFunction.apply(vars!); }
        finally { region.FirstPass?.Dispose(); }
        var main = outputs.Take(region.MainOutputs).ToArray();
        scope.MoveToOuter(main);
        region.FirstPass!.Deliver(outputs.Skip(region.MainOutputs).ToList());
        return main;
    }

    /// <summary>Every parameter the modules compute with: their own and their LoRA adapters' (a Linear or Experts holds
    /// its adapters as properties, not as registered submodules). Null modules are skipped.</summary>
    public static IEnumerable<Parameter> ParametersOf(params nn.Module?[] modules)
    {
        foreach (var m in modules)
        {
            if (m is null) continue;
            foreach (var p in m.parameters()) yield return p;
            foreach (var sub in m.modules().Prepend(m))
            {
                IEnumerable<nn.Module?> adapters = sub switch
                {
                    Linear l => [l.Lora],
                    Experts e => [e.GateLora, e.UpLora, e.DownLora],
                    _ => [],
                };
                foreach (var a in adapters)
                    if (a is not null)
                        foreach (var p in a.parameters()) yield return p;
            }
        }
    }
}
