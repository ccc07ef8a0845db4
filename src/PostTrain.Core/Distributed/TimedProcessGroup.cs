// A process group that measures the time its collectives take, for benchmarks (posttrain bench-train under launch):
// every call is passed to the wrapped group; before it, `sync` waits for the device's queued work (so the compute before
// the call is not charged to it), and after it waits again (an engine that only queues the transfer, NCCL, is charged
// for the transfer). The time goes to AllToAll (AllToAllV: expert parallelism's dispatch, combine and count exchange)
// or Sync (everything else: gradient all-reduce / reduce-scatter, parameter all-gather, small agreements). Sub-groups
// made by Split count into the same totals. The syncs serialise compute and communication: a timed run has no
// overlap, so its step is the step without overlap, and its communication time is the full cost of each collective.
// AllReduceAsync is the blocking AllReduce here (the base class's default), timed as such.
using System.Diagnostics;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed class TimedProcessGroup : ProcessGroup
{
    private readonly ProcessGroup inner;
    private readonly Action sync;
    private readonly Totals totals;
    private readonly bool owned;                  // made by Split: this wrapper disposes it

    private sealed class Totals { public long AllToAll, Sync; }

    /// <param name="inner">The group to time; it stays its owner's (this wrapper never disposes it).</param>
    /// <param name="sync">Waits for the device's queued work (cuda.synchronize; nothing on the CPU).</param>
    public TimedProcessGroup(ProcessGroup inner, Action sync) : this(inner, sync, new Totals(), owned: false) { }

    private TimedProcessGroup(ProcessGroup inner, Action sync, Totals totals, bool owned) =>
        (this.inner, this.sync, this.totals, this.owned) = (inner, sync, totals, owned);

    /// <summary>Seconds spent in AllToAllV since the last Reset (this group and its sub-groups).</summary>
    public double AllToAllSeconds => (double)Interlocked.Read(ref totals.AllToAll) / Stopwatch.Frequency;

    /// <summary>Seconds spent in every other collective since the last Reset.</summary>
    public double SyncSeconds => (double)Interlocked.Read(ref totals.Sync) / Stopwatch.Frequency;

    public void Reset()
    {
        Interlocked.Exchange(ref totals.AllToAll, 0);
        Interlocked.Exchange(ref totals.Sync, 0);
    }

    public ProcessGroup Inner => inner;
    public override int Rank => inner.Rank;
    public override int Size => inner.Size;

    private T Timed<T>(bool allToAll, Func<T> call)
    {
        sync();
        long t0 = Stopwatch.GetTimestamp();
        var result = call();
        sync();
        long dt = Stopwatch.GetTimestamp() - t0;
        if (allToAll) Interlocked.Add(ref totals.AllToAll, dt);
        else Interlocked.Add(ref totals.Sync, dt);
        return result;
    }

    public override void AllReduce(Tensor t, ReduceOp op = ReduceOp.Sum) => Timed(false, () => { inner.AllReduce(t, op); return 0; });
    public override void Broadcast(Tensor t, int root) => Timed(false, () => { inner.Broadcast(t, root); return 0; });
    public override Tensor AllGatherV(Tensor input, long[] rows) => Timed(false, () => inner.AllGatherV(input, rows));
    public override Tensor ReduceScatterV(Tensor input, long[] rows) => Timed(false, () => inner.ReduceScatterV(input, rows));
    public override Tensor AllToAllV(Tensor input, long[] sendRows, long[] recvRows) => Timed(true, () => inner.AllToAllV(input, sendRows, recvRows));
    public override void Barrier() => Timed(false, () => { inner.Barrier(); return 0; });
    public override ProcessGroup Split(int color, int key) => new TimedProcessGroup(inner.Split(color, key), sync, totals, owned: true);
    public override void Abort(int code, string message) => inner.Abort(code, message);

    /// <summary>Disposes a sub-group's communicator (made by Split); the wrapped group given to the constructor is kept.</summary>
    public override void Dispose()
    {
        if (owned) inner.Dispose();
    }
}
