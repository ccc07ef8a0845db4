// An exponential moving average of the weights kept in host memory (DeepSeek-V3 keeps one to judge the model early
// without extra GPU memory), updated off the training thread:
//   ema_0 = w_0 (the weights when the run starts);  ema_t = decay * ema_(t-1) + (1 - decay) * w_t at each update.
// Update(): waits for the previous update (at most one in flight), copies the device weights into host snapshot
// buffers (pinned for CUDA), then folds the snapshot into the EMA on a background task. On CUDA with the native
// side-stream events (Runtime/CudaAsync) the copy is queued on a side stream after the optimizer step and the
// training thread goes on at once: the copy runs while the next step's forward and backward run, and the run calls
// BeforeWeightsChange before the next optimizer step, which makes the training stream wait (on the device) for the
// copy to have read the weights; the background task waits for the copy on the host, then folds. Without them the
// copy runs on the training thread (non-blocking copies, one synchronisation). The fold is one pass over each
// tensor in chunks (lerp_ with the snapshot chunk in fp32), on torch's CPU threads. GPU memory: none.
// Timings (training thread: queuing or doing the copy, waiting for the previous update; background: waiting for the
// copy, folding) are kept for reports.
// SkipWhenBusy: an update that finds the previous one still running is skipped instead of waited for (no copy, no
// wait), and the next update folds with decay^(k+1) for the k skipped ones: ema = d^(k+1) ema + (1 - d^(k+1)) w, exact
// when the weights did not change over the skipped steps, an approximation otherwise. For models whose fold takes
// longer than a step (16 B fp32 values at 16B); off by default (every update folds exactly).
using System.Diagnostics;
using PostTrain.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public sealed class HostEma : IDisposable
{
    private readonly (string Name, Tensor Weight)[] source;
    private readonly Tensor[] ema;          // fp32, host
    private readonly Tensor[] snapshot;     // the weights' dtype, host (pinned for CUDA)
    private Task? pending;
    private readonly Device? asyncDevice;   // the weights' CUDA device when the copy runs on a side stream
    private CudaEvent? copied;              // the end of the side-stream copy in flight

    public double Decay { get; }
    public long Updates { get; private set; }
    public double CopySeconds { get; private set; }
    public double WaitSeconds { get; private set; }
    public double UpdateSeconds { get; private set; }
    /// <summary>Background seconds spent waiting for side-stream copies to finish (async copies only).</summary>
    public double TransferSeconds { get; private set; }
    /// <summary>How the weights reach the host: "side stream" (async) or "training thread" and, for CUDA weights without
    /// the side stream, why.</summary>
    public string CopyMode { get; }

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
        var devices = source.Select(w => w.Weight.device).Where(d => d.type == DeviceType.CUDA).Select(d => d.index).Distinct().ToArray();
        CopyMode = "training thread";
        if (devices.Length == 1 && source.All(w => w.Weight.device_type == DeviceType.CUDA))
        {
            var dev = source[0].Weight.device;
            string why = "POSTTRAIN_EMA_ASYNC=0";
            if (AllowAsync && CudaAsync.IsAvailable(dev, out why)) { asyncDevice = dev; CopyMode = "side stream"; }
            else CopyMode = $"training thread ({why})";
        }
    }

    /// <summary>POSTTRAIN_EMA_ASYNC=0 keeps the copy on the training thread (for comparing the two).</summary>
    private static bool AllowAsync => Environment.GetEnvironmentVariable("POSTTRAIN_EMA_ASYNC") != "0";

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
        copied?.Dispose();                  // the previous update (and its copy) has finished
        copied = null;
        CudaEvent? evt = null;
        if (asyncDevice is { } dev) evt = CudaAsync.Run(dev, CopyToSnapshot);
        else
        {
            CopyToSnapshot();
            if (source.Any(w => w.Weight.device_type == DeviceType.CUDA)) torch.cuda.synchronize();
        }
        copied = evt;
        CopySeconds += clock.Elapsed.TotalSeconds;
        Updates++;
        int steps = behind + 1;
        behind = 0;
        var gate = FoldGate;
        pending = Task.Run(() =>
        {
            gate?.Wait();
            if (evt is not null)
            {
                var wait = Stopwatch.StartNew();
                evt.Synchronize();
                TransferSeconds += wait.Elapsed.TotalSeconds;
            }
            Fold(steps);
        });
    }

    /// <summary>Call before anything changes the weights in place (the optimizer step): with a side-stream copy in
    /// flight, the current stream's later work waits for it on the device (the host does not wait).</summary>
    public void BeforeWeightsChange() => copied?.Block();

    private void CopyToSnapshot()
    {
        using var _ = no_grad();
        for (int i = 0; i < source.Length; i++) snapshot[i].copy_(source[i].Weight, nonBlocking: true);
    }

    /// <summary>ema = d^steps ema + (1 - d^steps) snapshot (steps = 1 + the updates skipped before this one), as
    /// ema.lerp_(snapshot, 1 - d^steps): one pass over memory per chunk (the bf16 snapshot chunk widened to fp32 in a
    /// cache-sized temporary).</summary>
    private void Fold(int steps)
    {
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var weight = tensor(1 - Math.Pow(Decay, steps), ScalarType.Float32);
        for (int i = 0; i < ema.Length; i++)
        {
            using var e = ema[i].view(-1);
            using var s = snapshot[i].view(-1);
            long n = e.shape[0];
            for (long o = 0; o < n; o += FoldChunk)
            {
                long len = Math.Min(FoldChunk, n - o);
                using var ec = e.narrow(0, o, len);
                using var sc = s.narrow(0, o, len);
                if (sc.dtype == ScalarType.Float32) ec.lerp_(sc, weight);
                else
                {
                    using var f = sc.to(ScalarType.Float32);
                    ec.lerp_(f, weight);
                }
            }
        }
        UpdateSeconds += clock.Elapsed.TotalSeconds;
    }

    private const long FoldChunk = 1L << 21;   // 8 MB of fp32 per chunk: the widened snapshot stays in cache

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
        copied?.Dispose();
        foreach (var t in ema.Concat(snapshot)) t.Dispose();
    }
}
