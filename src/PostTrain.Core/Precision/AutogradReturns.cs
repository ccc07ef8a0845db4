// Lifetime of tensors crossing TorchSharp's custom-autograd boundary in backward.
// The native engine copies the gradients a C# backward returns only after the call returns, so they cannot
// be disposed inside it; and on CUDA backward runs on an engine thread where no dispose scope is open, so
// without help they (and the incoming gradient wrappers) would keep GPU memory alive until the .NET GC runs.
// Simplification: returned gradients are kept until the next custom backward on the same thread (at most
// one layer's gradients per thread outlive their use).
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

internal static class AutogradReturns
{
    [ThreadStatic]
    private static List<Tensor>? held;

    /// <summary>Call first in every custom backward: frees what the previous backward on this thread returned.</summary>
    internal static void ReleasePrevious()
    {
        if (held is null)
            return;
        foreach (var t in held)
            t.Dispose();
        held.Clear();
    }

    /// <summary>Call last: disposes the incoming gradient wrappers (native code keeps its own references) and keeps
    /// the outgoing gradients, detached from every dispose scope, alive until the next ReleasePrevious.</summary>
    internal static List<Tensor> Return(List<Tensor> incoming, List<Tensor?> outgoing)
    {
        foreach (var g in incoming)
            g?.Dispose();
        held ??= [];
        var result = new List<Tensor>(outgoing.Count);
        foreach (var g in outgoing)
        {
            if (g is not null)
            {
                g.DetachFromDisposeScope();
                held.Add(g);
            }
            result.Add(g!);
        }
        return result;
    }
}
