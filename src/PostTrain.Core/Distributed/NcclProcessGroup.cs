// ProcessGroup over an NCCL communicator for CUDA tensors (one process per GPU). The communicator is bootstrapped
// through the MPI group the launcher started (rank 0's ncclUniqueId is broadcast over it); CPU tensors and host
// arrays keep using that MPI group. Collectives run on the default CUDA stream, the stream TorchSharp's kernels use,
// so they are ordered with the training step without any host synchronisation. The uneven collectives are NCCL
// group calls: AllGatherV = one broadcast per root into its slice, ReduceScatterV = one reduce per root (a plain
// ncclReduceScatter when every rank gets the same rows), AllToAllV = paired send/recv per peer.
// Failure: like PyTorch's NCCL watchdog, each collective records a CUDA event; a background thread polls the oldest
// one and the communicator's async error, and past Timeout (or on an NCCL error) aborts the communicator and ends
// every rank through MPI with a message naming the collective.
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed unsafe class NcclProcessGroup : ProcessGroup
{
    private readonly ProcessGroup bootstrap;
    private readonly bool ownsBootstrap;
    private readonly int ordinal;
    private readonly IntPtr context;
    private IntPtr comm;
    private readonly Queue<(IntPtr Event, string What, Stopwatch Since)> pending = new();
    private readonly Lock gate = new();
    private readonly Thread watchdog;
    private volatile bool stopping;

    public override int Rank => bootstrap.Rank;
    public override int Size => bootstrap.Size;

    /// <summary>How long a collective may stay unfinished on the GPU before every rank is ended.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The CUDA device ordinal this communicator runs on.</summary>
    public int Device => ordinal;

    /// <summary>A communicator over the ranks of <paramref name="bootstrap"/> on CUDA device <paramref name="deviceOrdinal"/>.</summary>
    public NcclProcessGroup(ProcessGroup bootstrap, int deviceOrdinal, TimeSpan timeout, bool ownsBootstrap = false)
    {
        NcclNative.Load();
        this.bootstrap = bootstrap;
        this.ownsBootstrap = ownsBootstrap;
        ordinal = deviceOrdinal;
        Timeout = timeout;
        context = CudaDriver.PrimaryContext(deviceOrdinal);
        NcclUniqueId id = default;
        if (bootstrap.Rank == 0) NcclNative.Check(NcclNative.GetUniqueId(&id), "ncclGetUniqueId");
        using (var bytes = tensor(new ReadOnlySpan<byte>(id.Internal, 128).ToArray()))
        {
            bootstrap.Broadcast(bytes, 0);
            bytes.data<byte>().CopyTo(new Span<byte>(id.Internal, 128));
        }
        CudaDriver.MakeCurrent(context);
        IntPtr c;
        NcclNative.Check(NcclNative.CommInitRank(&c, bootstrap.Size, id, bootstrap.Rank), $"ncclCommInitRank (rank {bootstrap.Rank} of {bootstrap.Size}, cuda:{deviceOrdinal})");
        comm = c;
        watchdog = new Thread(Watch) { IsBackground = true, Name = $"nccl-watchdog-{Rank}" };
        watchdog.Start();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => StopWatching();
    }

    public override void AllReduce(Tensor t, ReduceOp op = ReduceOp.Sum)
    {
        if (OnHost(t)) { bootstrap.AllReduce(t, op); return; }
        InPlace(t, x => Enqueue("AllReduce", () =>
            NcclNative.AllReduce(Ptr(x), Ptr(x), (nuint)x.numel(), ReduceType(x.dtype), Op(op), comm, IntPtr.Zero)));
    }

    public override void Broadcast(Tensor t, int root)
    {
        if (OnHost(t)) { bootstrap.Broadcast(t, root); return; }
        InPlace(t, x =>
        {
            var (type, scale) = MoveType(x.dtype);
            Enqueue("Broadcast", () => NcclNative.Broadcast(Ptr(x), Ptr(x), (nuint)(x.numel() * scale), type, root, comm, IntPtr.Zero));
        });
    }

    public override Tensor AllGatherV(Tensor input, long[] rows)
    {
        if (OnHost(input)) return bootstrap.AllGatherV(input, rows);
        CheckSplit(rows, "AllGatherV");
        input = input.contiguous();
        long rowSize = RowSize(input);
        var output = Rows(input, rows.Sum());
        var (type, scale) = MoveType(input.dtype);
        Enqueue("AllGatherV", () => Grouped(() =>
        {
            long at = 0;
            for (int r = 0; r < Size; r++)
            {
                long n = rows[r] * rowSize * scale;
                if (n > 0)
                {
                    int rc = NcclNative.Broadcast(Ptr(input), Offset(output, at * rowSize), (nuint)n, type, r, comm, IntPtr.Zero);
                    if (rc != NcclNative.Success) return rc;
                }
                at += rows[r];
            }
            return NcclNative.Success;
        }));
        return output;
    }

    public override Tensor ReduceScatterV(Tensor input, long[] rows)
    {
        if (OnHost(input)) return bootstrap.ReduceScatterV(input, rows);
        CheckSplit(rows, "ReduceScatterV");
        if (input.shape[0] != rows.Sum()) throw new ArgumentException($"ReduceScatterV: input has {input.shape[0]} rows, the split {rows.Sum()}");
        input = input.contiguous();
        long rowSize = RowSize(input);
        var output = Rows(input, rows[Rank]);
        var type = ReduceType(input.dtype);
        if (rows.All(r => r == rows[0]))
            Enqueue("ReduceScatter", () => NcclNative.ReduceScatter(Ptr(input), Ptr(output), (nuint)(rows[0] * rowSize), type, NcclRedOp.Sum, comm, IntPtr.Zero));
        else
            Enqueue("ReduceScatterV", () => Grouped(() =>
            {
                long at = 0;
                for (int r = 0; r < Size; r++)
                {
                    if (rows[r] > 0)
                    {
                        int rc = NcclNative.Reduce(Offset(input, at * rowSize), r == Rank ? Ptr(output) : Offset(input, at * rowSize),
                            (nuint)(rows[r] * rowSize), type, NcclRedOp.Sum, r, comm, IntPtr.Zero);
                        if (rc != NcclNative.Success) return rc;
                    }
                    at += rows[r];
                }
                return NcclNative.Success;
            }));
        return output;
    }

    public override Tensor AllToAllV(Tensor input, long[] sendRows, long[] recvRows)
    {
        if (OnHost(input)) return bootstrap.AllToAllV(input, sendRows, recvRows);
        CheckSplit(sendRows, "AllToAllV"); CheckSplit(recvRows, "AllToAllV");
        if (input.shape[0] != sendRows.Sum()) throw new ArgumentException($"AllToAllV: input has {input.shape[0]} rows, the send split {sendRows.Sum()}");
        input = input.contiguous();
        long rowSize = RowSize(input);
        var output = Rows(input, recvRows.Sum());
        var (type, scale) = MoveType(input.dtype);
        Enqueue("AllToAllV", () => Grouped(() =>
        {
            long sendAt = 0, recvAt = 0;
            for (int r = 0; r < Size; r++)
            {
                if (sendRows[r] > 0)
                {
                    int rc = NcclNative.Send(Offset(input, sendAt * rowSize), (nuint)(sendRows[r] * rowSize * scale), type, r, comm, IntPtr.Zero);
                    if (rc != NcclNative.Success) return rc;
                }
                if (recvRows[r] > 0)
                {
                    int rc = NcclNative.Recv(Offset(output, recvAt * rowSize), (nuint)(recvRows[r] * rowSize * scale), type, r, comm, IntPtr.Zero);
                    if (rc != NcclNative.Success) return rc;
                }
                sendAt += sendRows[r];
                recvAt += recvRows[r];
            }
            return NcclNative.Success;
        }));
        return output;
    }

    /// <summary>Waits for this rank's queued collectives (a device synchronisation point), then for every rank.</summary>
    public override void Barrier()
    {
        using (var one = ones(1, device: new torch.Device(DeviceType.CUDA, ordinal)))
        {
            AllReduce(one);
            _ = one.cpu();
        }
        bootstrap.Barrier();
    }

    public override ProcessGroup Split(int color, int key) =>
        new NcclProcessGroup(bootstrap.Split(color, key), ordinal, Timeout, ownsBootstrap: true);

    public override void Abort(int code, string message)
    {
        if (comm != IntPtr.Zero) NcclNative.CommAbort(comm);
        comm = IntPtr.Zero;
        bootstrap.Abort(code, message);
    }

    public override void Dispose()
    {
        StopWatching();
        lock (gate)
            while (pending.Count > 0) CudaDriver.Destroy(pending.Dequeue().Event);
        if (comm != IntPtr.Zero) NcclNative.CommDestroy(comm);
        comm = IntPtr.Zero;
        if (ownsBootstrap) bootstrap.Dispose();
    }

    /// <summary>Calls NCCL with this communicator's device current, then records the event the watchdog polls.</summary>
    private void Enqueue(string what, Func<int> call)
    {
        if (comm == IntPtr.Zero) throw new ObjectDisposedException(nameof(NcclProcessGroup));
        CudaDriver.MakeCurrent(context);
        NcclNative.Check(call(), "nccl" + what);
        var ev = CudaDriver.RecordOnDefaultStream();
        lock (gate) pending.Enqueue((ev, what, Stopwatch.StartNew()));
    }

    private static int Grouped(Func<int> calls)
    {
        int rc = NcclNative.GroupStart();
        if (rc != NcclNative.Success) return rc;
        int inner = calls();
        int end = NcclNative.GroupEnd();
        return inner != NcclNative.Success ? inner : end;
    }

    private void Watch()
    {
        try
        {
            CudaDriver.MakeCurrent(context);
            while (!stopping)
            {
                if (Poll() is string failure) { Abort(3, failure); return; }
                Thread.Sleep(pending.Count > 0 ? 1 : 10);
            }
        }
        catch (Exception e)
        {
            // at process exit the driver is torn down under this thread (CUDA error 4): that ends the watch quietly
            if (stopping || e.Message.Contains("error 4", StringComparison.Ordinal)) return;
            Abort(3, $"the NCCL watchdog on cuda:{ordinal} failed: {e.Message}; aborting all ranks");
        }
    }

    /// <summary>Retires finished collectives; returns why the job must end, or null.</summary>
    private string? Poll()
    {
        lock (gate)
        {
            while (pending.Count > 0 && CudaDriver.Done(pending.Peek().Event)) CudaDriver.Destroy(pending.Dequeue().Event);
            if (pending.Count > 0 && pending.Peek().Since.Elapsed > Timeout)
                return $"NCCL {pending.Peek().What} did not complete within {Timeout.TotalSeconds:F0} s on cuda:{ordinal}: another rank " +
                    "crashed or hangs; aborting all ranks (set POSTTRAIN_DIST_TIMEOUT to change the limit)";
            if (comm == IntPtr.Zero) return null;
            int async = 0;
            return NcclNative.CommGetAsyncError(comm, &async) == NcclNative.Success && async != NcclNative.Success && async != NcclNative.InProgress
                ? $"NCCL reported an asynchronous error on cuda:{ordinal}: {NcclNative.ErrorString(async)}; aborting all ranks" : null;
        }
    }

    /// <summary>Stops the watchdog (at process exit, before the CUDA driver is torn down).</summary>
    public void StopWatching()
    {
        stopping = true;
        if (Thread.CurrentThread != watchdog) watchdog.Join();
    }

    private static bool OnHost(Tensor t) => t.device_type != DeviceType.CUDA;

    private static void InPlace(Tensor t, Action<Tensor> op)
    {
        if (t.is_contiguous()) { op(t); return; }
        using var c = t.contiguous();
        op(c);
        t.copy_(c);
    }

    private void CheckSplit(long[] rows, string what)
    {
        if (rows.Length != Size) throw new ArgumentException($"{what}: {rows.Length} row counts for {Size} ranks");
        if (rows.Any(r => r < 0)) throw new ArgumentException($"{what}: negative row count");
    }

    private static Tensor Rows(Tensor like, long rows)
    {
        var shape = like.shape.ToArray();
        shape[0] = rows;
        return empty(shape, like.dtype, like.device);
    }

    private static long RowSize(Tensor t) => t.shape.Skip(1).Aggregate(1L, (a, b) => a * b);

    private static IntPtr Ptr(Tensor t) => TensorPointer.Of(t);

    /// <summary>The address <paramref name="elements"/> elements into a contiguous tensor.</summary>
    private static IntPtr Offset(Tensor t, long elements) => t.numel() == 0 ? IntPtr.Zero : TensorPointer.Of(t) + (nint)(elements * t.ElementSize);

    private static NcclDataType ReduceType(ScalarType t) => t switch
    {
        ScalarType.Float32 => NcclDataType.Float32,
        ScalarType.Float64 => NcclDataType.Float64,
        ScalarType.BFloat16 => NcclDataType.Bfloat16,
        ScalarType.Float16 => NcclDataType.Float16,
        ScalarType.Int64 => NcclDataType.Int64,
        ScalarType.Int32 => NcclDataType.Int32,
        ScalarType.Int8 => NcclDataType.Int8,
        ScalarType.Byte => NcclDataType.Uint8,
        _ => throw new NotSupportedException($"NCCL reduction of {t} tensors"),
    };

    /// <summary>Datatype for data movement: the typed one where NCCL has it, else bytes (count scaled by the element size).</summary>
    private static (NcclDataType Type, long Scale) MoveType(ScalarType t) =>
        t == ScalarType.Bool || t == Precision.Fp8.Float8E4M3 ? (NcclDataType.Uint8, 1)
        : t == ScalarType.Int16 ? (NcclDataType.Uint8, 2)
        : (ReduceType(t), 1);

    private static NcclRedOp Op(ReduceOp op) => op switch
    {
        ReduceOp.Sum => NcclRedOp.Sum,
        ReduceOp.Max => NcclRedOp.Max,
        _ => NcclRedOp.Min,
    };
}
