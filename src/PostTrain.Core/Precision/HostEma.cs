// An exponential moving average of the weights kept in host memory (DeepSeek-V3 keeps one to judge the model early
// without extra GPU memory), updated off the training thread:
//   ema_0 = w_0 (the weights when the run starts);  ema_t = decay * ema_(t-1) + (1 - decay) * w_t at each update.
// Update(): waits for the previous update (at most one in flight), copies the device weights into host snapshot
// buffers (pinned for CUDA, non-blocking, one synchronisation: the only work on the training thread), then folds the
// snapshot into the EMA on a background task with in-place CPU ops. Values waits for that task. GPU memory: none.
// Timings (copy on the training thread, waiting for the previous task, the task itself) are kept for reports.
// SkipWhenBusy: an update that finds the previous fold still running is skipped instead of waited for (no copy, no
// wait), and the next update folds with decay^(k+1) for the k skipped ones: ema = d^(k+1) ema + (1 - d^(k+1)) w, exact
// when the weights did not change over the skipped steps, an approximation otherwise. For models whose fold takes
// longer than a step (16 B fp32 values at 16B); off by default (every update folds exactly).
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public sealed class HostEma : IDisposable
{
    private readonly (string Name, Tensor Weight)[] source;
    private readonly Tensor[] ema;          // fp32, host
    private readonly Tensor[] snapshot;     // the weights' dtype, host (pinned for CUDA)
    private Task? pending;

    public double Decay { get; }
    public long Updates { get; private set; }
    public double CopySeconds { get; private set; }
    public double WaitSeconds { get; private set; }
    public double UpdateSeconds { get; private set; }

    /// <summary>Skip an update while the previous fold runs (see the header).</summary>
    public bool SkipWhenBusy { get; init; }
    /// <summary>Updates skipped because a fold was running (SkipWhenBusy).</summary>
    public long Skipped { get; private set; }
    private int behind;                     // skipped since the last fold

    /// <summary>Tests: the background fold waits for this gate (a fold held busy on purpose).</summary>
    internal ManualResetEventSlim? FoldGate { get; set; }

    public HostEma(IEnumerable<(string Name, Tensor Weight)> weights, double decay)
    {
        if (decay is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(decay), decay, "ema.decay must be in [0, 1)");
        Decay = decay;
        source = weights.ToArray();
        using var _ = no_grad();
        ema = source.Select(w => w.Weight.detach().to(ScalarType.Float32, CPU, copy: true).DetachFromDisposeScope()).ToArray();
        snapshot = source.Select(w =>
        {
            var s = empty(w.Weight.shape, dtype: w.Weight.dtype);
            return (w.Weight.device_type == DeviceType.CUDA ? s.pin_memory() : s).DetachFromDisposeScope();
        }).ToArray();
    }

    /// <summary>Copies the current weights to the host and starts folding them into the average in the background.</summary>
    public void Update()
    {
        if (SkipWhenBusy && pending is { IsCompleted: false })
        {
            Skipped++;
            behind++;
            return;
        }
        var clock = Stopwatch.StartNew();
        pending?.Wait();
        WaitSeconds += clock.Elapsed.TotalSeconds;
        clock.Restart();
        bool cuda = false;
        using (no_grad())
            for (int i = 0; i < source.Length; i++)
            {
                cuda |= source[i].Weight.device_type == DeviceType.CUDA;
                snapshot[i].copy_(source[i].Weight, nonBlocking: true);
            }
        if (cuda) torch.cuda.synchronize();
        CopySeconds += clock.Elapsed.TotalSeconds;
        Updates++;
        int steps = behind + 1;
        behind = 0;
        var gate = FoldGate;
        pending = Task.Run(() =>
        {
            gate?.Wait();
            Fold(steps);
        });
    }

    /// <summary>ema = d^steps ema + (1 - d^steps) snapshot (steps = 1 + the updates skipped before this one).</summary>
    private void Fold(int steps)
    {
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        double d = Math.Pow(Decay, steps);
        for (int i = 0; i < ema.Length; i++)
            ema[i].mul_(d).add_(snapshot[i], alpha: 1 - d);
        UpdateSeconds += clock.Elapsed.TotalSeconds;
    }

    /// <summary>The averaged weights by name (fp32, host), after the update in flight has finished. Not copies: read them
    /// before the next Update.</summary>
    public IReadOnlyDictionary<string, Tensor> Values()
    {
        pending?.Wait();
        return source.Select((s, i) => (s.Name, ema[i])).ToDictionary(p => p.Name, p => p.Item2, StringComparer.Ordinal);
    }

    /// <summary>Restores averaged weights saved from Values (every name, same shapes).</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> values, string source)
    {
        pending?.Wait();
        using var _ = no_grad();
        foreach (var ((name, _), e) in this.source.Zip(ema))
        {
            if (!values.TryGetValue(name, out var v) || !v.shape.SequenceEqual(e.shape))
                throw new InvalidDataException($"{source}: EMA tensor '{name}' is missing or has the wrong shape");
            e.copy_(v);
        }
    }

    public void Dispose()
    {
        pending?.Wait();
        foreach (var t in ema.Concat(snapshot)) t.Dispose();
    }
}
