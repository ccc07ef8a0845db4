// ProcessGroup over an Open MPI communicator. Every collective is the non-blocking MPI call (MPI_Iallreduce,
// MPI_Ibcast, MPI_Iallgatherv, MPI_Ireduce_scatter, MPI_Ialltoallv, MPI_Ibarrier) completed by polling MPI_Test, so
// a collective that a crashed or hung rank never joins ends the job (MPI_Abort, exit code 3) after Timeout instead of
// hanging. CPU tensors are used in place; CUDA tensors are staged through host memory (the NCCL engine is the fast
// path for those). bf16/fp16 reductions run in fp32 (MPI has no 16-bit float sum) and are rounded back.
// AllReduceAsync starts MPI_Iallreduce at once (CPU fp32/fp64/int tensors in place; others through a host buffer the
// handle keeps alive and copies back at Wait) and Wait polls it like every other call; Test() polls once (Open MPI
// progresses a started collective only inside MPI calls, so the overlap tests its started buckets at each signal). MPI runs at thread level
// SERIALIZED: a collective can be started from an autograd backward (on CUDA, libtorch's device thread), so every MPI
// call of the process goes through one lock (Gate).
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed unsafe class MpiProcessGroup : ProcessGroup
{
    private IntPtr comm;
    private static readonly object Gate = new();   // MPI_THREAD_SERIALIZED: one MPI call at a time in the process
    private readonly bool owned;

    public override int Rank { get; }
    public override int Size { get; }

    /// <summary>How long one collective may wait for the other ranks before the job is aborted.</summary>
    public TimeSpan Timeout { get; init; }

    private MpiProcessGroup(IntPtr comm, bool owned, TimeSpan timeout)
    {
        this.comm = comm;
        this.owned = owned;
        Timeout = timeout;
        Check(MpiNative.MPI_Comm_rank(comm, out int rank), "MPI_Comm_rank");
        Check(MpiNative.MPI_Comm_size(comm, out int size), "MPI_Comm_size");
        (Rank, Size) = (rank, size);
    }

    /// <summary>Initialises MPI (thread level serialized) once per process and returns MPI_COMM_WORLD.</summary>
    public static MpiProcessGroup InitWorld(TimeSpan timeout)
    {
        MpiNative.Load();
        Check(MpiNative.MPI_Initialized(out int init), "MPI_Initialized");
        if (init == 0)
        {
            Check(MpiNative.MPI_Init_thread(IntPtr.Zero, IntPtr.Zero, MpiNative.ThreadSerialized, out int provided), "MPI_Init_thread");
            if (provided < MpiNative.ThreadSerialized)
                throw new InvalidOperationException($"Open MPI gives thread level {provided}; PostTrain needs MPI_THREAD_SERIALIZED (2).");
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                if (MpiNative.MPI_Finalized(out int done) == MpiNative.Success && done == 0) MpiNative.MPI_Finalize();
            };
        }
        return new MpiProcessGroup(MpiNative.Global("ompi_mpi_comm_world"), owned: false, timeout);
    }

    public override void AllReduce(Tensor t, ReduceOp op = ReduceOp.Sum)
    {
        if (Staged(t, x => AllReduce(x, op))) return;
        if (t.dtype is ScalarType.BFloat16 or ScalarType.Float16)
        {
            using var f = t.to(ScalarType.Float32);
            AllReduce(f, op);
            t.copy_(f);
            return;
        }
        lock (Gate) Run("AllReduce", MpiNative.MPI_Iallreduce(MpiNative.InPlace, TensorPointer.Of(t), Count(t.numel()), Type(t.dtype), Op(op), comm, out var req), req);
    }

    public override CollectiveHandle AllReduceAsync(Tensor t, ReduceOp op = ReduceOp.Sum)
    {
        bool direct = t.device_type == DeviceType.CPU && t.is_contiguous() && t.dtype is not (ScalarType.BFloat16 or ScalarType.Float16);
        var buffer = direct ? t : t.to(t.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? ScalarType.Float32 : t.dtype, CPU).contiguous();
        if (!direct) buffer.DetachFromDisposeScope();   // owned by the handle until Wait
        IntPtr req;
        lock (Gate) Check(MpiNative.MPI_Iallreduce(MpiNative.InPlace, TensorPointer.Of(buffer), Count(buffer.numel()), Type(buffer.dtype), Op(op), comm, out req), "MPI_Iallreduce");
        return new CollectiveHandle(() =>
        {
            Poll("AllReduce", ref req);
            if (direct) return;
            using (buffer) t.copy_(buffer);
        }, () => Test(ref req));
    }

    public override void Broadcast(Tensor t, int root)
    {
        if (Staged(t, x => Broadcast(x, root))) return;
        var (type, scale) = MoveType(t.dtype);
        lock (Gate) Run("Broadcast", MpiNative.MPI_Ibcast(TensorPointer.Of(t), Count(t.numel() * scale), type, root, comm, out var req), req);
    }

    public override Tensor AllGatherV(Tensor input, long[] rows)
    {
        CheckRows(rows, input, "AllGatherV");
        if (input.device_type != DeviceType.CPU)
        {
            using var host = input.cpu();
            using var r = AllGatherV(host, rows);
            return r.to(input.device);
        }
        input = input.contiguous();
        long rowSize = RowSize(input);
        var shape = input.shape.ToArray(); shape[0] = rows.Sum();
        var output = empty(shape, input.dtype);
        var (type, scale) = MoveType(input.dtype);
        var counts = Counts(rows, rowSize * scale); var displs = Displs(counts);
        fixed (int* c = counts, d = displs)
            lock (Gate) Run("AllGatherV", MpiNative.MPI_Iallgatherv(TensorPointer.Of(input), counts[Rank], type, TensorPointer.Of(output), c, d, type, comm, out var req), req);
        return output;
    }

    public override Tensor ReduceScatterV(Tensor input, long[] rows)
    {
        CheckRows(rows, null, "ReduceScatterV");
        if (input.shape[0] != rows.Sum()) throw new ArgumentException($"ReduceScatterV: input has {input.shape[0]} rows, the split {rows.Sum()}");
        if (input.device_type != DeviceType.CPU || input.dtype is ScalarType.BFloat16 or ScalarType.Float16)
        {
            using var host = input.to(ScalarType.Float32, CPU);
            using var r = ReduceScatterV(host, rows);
            return r.to(input.dtype, input.device);
        }
        input = input.contiguous();
        long rowSize = RowSize(input);
        var shape = input.shape.ToArray(); shape[0] = rows[Rank];
        var output = empty(shape, input.dtype);
        var counts = Counts(rows, rowSize);
        fixed (int* c = counts)
            lock (Gate) Run("ReduceScatterV", MpiNative.MPI_Ireduce_scatter(TensorPointer.Of(input), TensorPointer.Of(output), c, Type(input.dtype), Op(ReduceOp.Sum), comm, out var req), req);
        return output;
    }

    public override Tensor AllToAllV(Tensor input, long[] sendRows, long[] recvRows)
    {
        CheckRows(sendRows, null, "AllToAllV"); CheckRows(recvRows, null, "AllToAllV");
        if (input.shape[0] != sendRows.Sum()) throw new ArgumentException($"AllToAllV: input has {input.shape[0]} rows, the send split {sendRows.Sum()}");
        if (input.device_type != DeviceType.CPU)
        {
            using var host = input.cpu();
            using var r = AllToAllV(host, sendRows, recvRows);
            return r.to(input.device);
        }
        input = input.contiguous();
        long rowSize = RowSize(input);
        var shape = input.shape.ToArray(); shape[0] = recvRows.Sum();
        var output = empty(shape, input.dtype);
        var (type, scale) = MoveType(input.dtype);
        var sc = Counts(sendRows, rowSize * scale); var sd = Displs(sc);
        var rc = Counts(recvRows, rowSize * scale); var rd = Displs(rc);
        fixed (int* scp = sc, sdp = sd, rcp = rc, rdp = rd)
            lock (Gate) Run("AllToAllV", MpiNative.MPI_Ialltoallv(TensorPointer.Of(input), scp, sdp, type, TensorPointer.Of(output), rcp, rdp, type, comm, out var req), req);
        return output;
    }

    public override void Barrier() { lock (Gate) Run("Barrier", MpiNative.MPI_Ibarrier(comm, out var req), req); }

    public override ProcessGroup Split(int color, int key)
    {
        Check(MpiNative.MPI_Comm_split(comm, color, key, out var sub), "MPI_Comm_split");
        return new MpiProcessGroup(sub, owned: true, Timeout);
    }

    public override void Abort(int code, string message)
    {
        Console.Error.WriteLine($"rank {Rank}: {message}");
        Console.Error.Flush();
        MpiNative.MPI_Abort(comm, code);
        Environment.Exit(code);
    }

    public override void Dispose()
    {
        if (owned && comm != IntPtr.Zero && MpiNative.MPI_Finalized(out int done) == MpiNative.Success && done == 0)
            MpiNative.MPI_Comm_free(ref comm);
        comm = IntPtr.Zero;
    }

    /// <summary>Polls the request until it completes; past Timeout the whole job is aborted with a message naming the call.</summary>
    private void Run(string what, int rc, IntPtr request)
    {
        Check(rc, "MPI_I" + what);
        Poll(what, ref request);
    }

    /// <summary>One MPI_Test: drives the engine's progress; true once the request completed (it is then MPI_REQUEST_NULL).</summary>
    private static bool Test(ref IntPtr request)
    {
        int flag;
        lock (Gate) Check(MpiNative.MPI_Test(ref request, out flag, IntPtr.Zero), "MPI_Test");
        return flag != 0;
    }

    private void Poll(string what, ref IntPtr request)
    {
        var sw = Stopwatch.StartNew();
        for (long polls = 0; ; polls++)
        {
            if (Test(ref request)) return;
            if (sw.Elapsed > Timeout)
                Abort(3, $"{what} did not complete within {Timeout.TotalSeconds:F0} s: another rank crashed or hangs; aborting all ranks " +
                    $"(set POSTTRAIN_DIST_TIMEOUT to change the limit)");
            if (polls < 2000) Thread.SpinWait(50); else if (polls < 4000) Thread.Yield(); else Thread.Sleep(1);
        }
    }

    private static bool Staged(Tensor t, Action<Tensor> op)
    {
        if (t.device_type == DeviceType.CPU && t.is_contiguous()) return false;
        using var host = t.cpu().contiguous();
        op(host);
        t.copy_(host);
        return true;
    }

    private static void CheckRows(long[] rows, Tensor? input, string what)
    {
        if (rows.Any(r => r < 0)) throw new ArgumentException($"{what}: negative row count");
        _ = input;
    }

    private void CheckSize(long[] rows, string what)
    {
        if (rows.Length != Size) throw new ArgumentException($"{what}: {rows.Length} row counts for {Size} ranks");
    }

    private static long RowSize(Tensor t) => t.shape.Skip(1).Aggregate(1L, (a, b) => a * b);

    private int[] Counts(long[] rows, long rowSize)
    {
        CheckSize(rows, "collective");
        return rows.Select(r => Count(r * rowSize)).ToArray();
    }

    private static int[] Displs(int[] counts)
    {
        var d = new int[counts.Length];
        long at = 0;
        for (int i = 0; i < counts.Length; i++) { d[i] = Count(at); at += counts[i]; }
        return d;
    }

    private static int Count(long n) => n <= int.MaxValue ? (int)n
        : throw new ArgumentException($"a collective of {n} elements exceeds MPI's int count; split it into buckets");

    private static IntPtr Type(ScalarType t) => MpiNative.Global(t switch
    {
        ScalarType.Float32 => "ompi_mpi_float",
        ScalarType.Float64 => "ompi_mpi_double",
        ScalarType.Int64 => "ompi_mpi_int64_t",
        ScalarType.Int32 => "ompi_mpi_int",
        _ => throw new NotSupportedException($"MPI reduction of {t} tensors (use float32/float64/int32/int64)"),
    });

    /// <summary>Datatype for data movement: the typed one where MPI has it, else bytes (count scaled by the element size).</summary>
    private static (IntPtr Type, long Scale) MoveType(ScalarType t) => t switch
    {
        ScalarType.Float32 or ScalarType.Float64 or ScalarType.Int64 or ScalarType.Int32 => (Type(t), 1),
        ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Int16 => (MpiNative.Global("ompi_mpi_byte"), 2),
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => (MpiNative.Global("ompi_mpi_byte"), 1),
        _ => throw new NotSupportedException($"MPI data movement of {t} tensors"),
    };

    private static IntPtr Op(ReduceOp op) => MpiNative.Global(op switch
    {
        ReduceOp.Sum => "ompi_mpi_op_sum",
        ReduceOp.Max => "ompi_mpi_op_max",
        _ => "ompi_mpi_op_min",
    });

    private static void Check(int rc, string call)
    {
        if (rc != MpiNative.Success) throw new InvalidOperationException($"{call} failed with MPI error code {rc}");
    }
}
