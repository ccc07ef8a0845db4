// FP8 weights quantised once per optimizer step instead of once per use (DeepSeek-V3 keeps one FP8 copy of each weight
// between updates). The training run opens a window for the forward and backward passes of one step (TrainingRun:
// BeginStep .. Update), so every micro-batch of gradient accumulation and every forward that layer recompute repeats
// reuses the first quantisation, and closes it before the optimizer changes the weights. Outside a window nothing is
// cached (inference, rollouts, the CUDA-graph fast path, which quantises inside its one captured step).
// The open window is per execution flow (AsyncLocal): two runs in one process (or tests running side by side) each have
// their own. Only leaf tensors that require a gradient (parameters) are cached, keyed by their native handle: they stay
// alive and unchanged for the window, so a handle cannot be reused by another tensor inside it.
using PostTrain.Core.Kernels;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public sealed class Fp8WeightCache : IDisposable
{
    private static readonly AsyncLocal<Fp8WeightCache?> Current = new();
    private readonly Dictionary<IntPtr, (Tensor Q, Tensor Scale, Tensor QT, Tensor ScaleT)> _entries = [];
    private readonly object _gate = new();
    private bool _closed;

    private Fp8WeightCache() { }

    /// <summary>Opens the window of one optimizer step on this execution flow (closing one left open, e.g. by a failed
    /// step). Dispose closes it and frees the cached tensors.</summary>
    public static Fp8WeightCache Open()
    {
        Current.Value?.Dispose();
        var window = new Fp8WeightCache();
        Current.Value = window;
        return window;
    }

    /// <summary>The open window of this execution flow, or null.</summary>
    public static Fp8WeightCache? Active => Current.Value is { _closed: false } w ? w : null;

    /// <summary>Quantisations reused / computed in this window.</summary>
    public long Hits { get; private set; }
    public long Misses { get; private set; }

    /// <summary>kernels.QuantBlocksBoth(w), from the open window's cache when w is a parameter quantised earlier in it.
    /// Cached tensors belong to the window (no dispose scope owns them): callers must not dispose them.</summary>
    internal static (Tensor Q, Tensor Scale, Tensor QT, Tensor ScaleT) QuantBlocksBoth(IFp8Kernels kernels, Tensor w)
    {
        var window = Active;
        if (window is null || !w.is_leaf || !w.requires_grad) return kernels.QuantBlocksBoth(w);
        lock (window._gate)
        {
            if (window._closed) return kernels.QuantBlocksBoth(w);
            if (window._entries.TryGetValue(w.Handle, out var hit))
            {
                window.Hits++;
                return hit;
            }
            var (q, s, qt, st) = kernels.QuantBlocksBoth(w);
            var entry = (q.DetachFromDisposeScope(), s.DetachFromDisposeScope(), qt.DetachFromDisposeScope(), st.DetachFromDisposeScope());
            window._entries[w.Handle] = entry;
            window.Misses++;
            return entry;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_closed) return;
            _closed = true;
            foreach (var (q, s, qt, st) in _entries.Values)
            {
                q.Dispose();
                s.Dispose();
                qt.Dispose();
                st.Dispose();
            }
            _entries.Clear();
        }
        if (ReferenceEquals(Current.Value, this)) Current.Value = null;
    }
}
