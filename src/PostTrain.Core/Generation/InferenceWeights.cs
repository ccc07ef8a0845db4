// Compute-dtype copies of the model's weights for one Generate call: fp32 master weights are cast to the activation
// dtype (bf16) once instead of on every decode step, plus derived tensors (e.g. fused gate|up expert weights).
// Weights must not change while a Generator call runs; the copies are dropped at the end. With fp32 compute the
// parameters are used as they are (no copy).
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal sealed class InferenceWeights(ScalarType dtype) : IDisposable
{
    private readonly Dictionary<IntPtr, Tensor> cast = new();
    private readonly Dictionary<string, Tensor> derived = new();

    public ScalarType Dtype => dtype;

    /// <summary>The tensor in the compute dtype (the tensor itself when it already is).</summary>
    public Tensor this[Tensor p]
    {
        get
        {
            if (p.dtype == dtype) return p;
            if (!cast.TryGetValue(p.Handle, out var t))
            {
                t = p.detach().to(dtype).DetachFromDisposeScope();
                cast[p.Handle] = t;
            }
            return t;
        }
    }

    public Tensor? Optional(Tensor? p) => p is null ? null : this[p];

    /// <summary>A tensor built once per call (fused or transposed weights, constants), kept as <paramref name="make"/> returns it.</summary>
    public Tensor Derived(string key, Func<Tensor> make)
    {
        if (!derived.TryGetValue(key, out var t))
        {
            using (var scope = NewDisposeScope()) t = make().contiguous().MoveToOuterDisposeScope();
            t.DetachFromDisposeScope();
            derived[key] = t;
        }
        return t;
    }

    public void Dispose()
    {
        foreach (var t in cast.Values) t.Dispose();
        foreach (var t in derived.Values) t.Dispose();
        cast.Clear();
        derived.Clear();
    }
}
