// One process-group abstraction for every collective PostTrain uses, over the ranks of a communicator.
// Tensors are split along dim 0 ("rows"); a row is everything after dim 0. All calls are collective: every rank
// of the group makes the same calls in the same order. Engines: MpiProcessGroup (Open MPI; CPU tensors, CUDA
// tensors staged through the host) and SingleProcessGroup (one process: every collective is the identity).
// A collective that does not complete within Timeout (a rank crashed or hung) aborts every rank.
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public enum ReduceOp { Sum, Max, Min }

public abstract class ProcessGroup : IDisposable
{
    public abstract int Rank { get; }
    public abstract int Size { get; }

    /// <summary>In place: t = op over the ranks of t.</summary>
    public abstract void AllReduce(Tensor t, ReduceOp op = ReduceOp.Sum);

    /// <summary>AllReduce started without waiting: t holds the result after the handle's Wait(). t must not be read or
    /// written until then. Calls must be made in the same order on every rank, like every collective. Default: the
    /// blocking AllReduce and a completed handle (NCCL already returns once the work is queued on the stream).</summary>
    public virtual CollectiveHandle AllReduceAsync(Tensor t, ReduceOp op = ReduceOp.Sum)
    {
        AllReduce(t, op);
        return CollectiveHandle.Completed;
    }

    /// <summary>In place: t = root's t.</summary>
    public abstract void Broadcast(Tensor t, int root);

    /// <summary>Concatenation along dim 0 of every rank's input, in rank order; rows[r] = rank r's row count.</summary>
    public abstract Tensor AllGatherV(Tensor input, long[] rows);

    /// <summary>input (sum(rows), ...) summed over the ranks; this rank gets its rows[Rank] rows (in rank order).</summary>
    public abstract Tensor ReduceScatterV(Tensor input, long[] rows);

    /// <summary>input holds sendRows[r] rows for rank r (in rank order); returns the recvRows[r] rows from each rank r
    /// (in rank order). recvRows on this rank = sendRows[Rank] on rank r.</summary>
    public abstract Tensor AllToAllV(Tensor input, long[] sendRows, long[] recvRows);

    public abstract void Barrier();

    /// <summary>Sub-group of the ranks that pass the same color, ordered by key (MPI_Comm_split).</summary>
    public abstract ProcessGroup Split(int color, int key);

    /// <summary>Ends every rank of the job with this exit code and message (a fatal error on one rank).</summary>
    public abstract void Abort(int code, string message);

    public bool IsMain => Rank == 0;

    /// <summary>AllGather of one value per rank.</summary>
    public long[] AllGather(long value)
    {
        using var t = tensor(new[] { value });
        using var all = AllGatherV(t, Enumerable.Repeat(1L, Size).ToArray());
        return all.data<long>().ToArray();
    }

    /// <summary>Every rank's byte array (lengths may differ), in rank order.</summary>
    public byte[][] AllGatherBytes(byte[] bytes)
    {
        var lengths = AllGather(bytes.LongLength);
        using var mine = tensor(bytes);
        using var gathered = AllGatherV(mine, lengths);
        var all = gathered.data<byte>().ToArray();
        var result = new byte[Size][];
        long at = 0;
        for (int r = 0; r < Size; r++)
        {
            result[r] = all.AsSpan((int)at, (int)lengths[r]).ToArray();
            at += lengths[r];
        }
        return result;
    }

    /// <summary>Element-wise reduction of a host array over the ranks.</summary>
    public double[] AllReduce(double[] values, ReduceOp op = ReduceOp.Sum)
    {
        if (Size == 1) return values;
        using var t = tensor(values, ScalarType.Float64);
        AllReduce(t, op);
        return t.data<double>().ToArray();
    }

    public long[] AllReduce(long[] values, ReduceOp op = ReduceOp.Sum)
    {
        if (Size == 1) return values;
        using var t = tensor(values);
        AllReduce(t, op);
        return t.data<long>().ToArray();
    }

    /// <summary>Rows per rank when n items are split as evenly as possible (the first n % size ranks get one more).</summary>
    public static long[] EvenSplit(long n, int size) =>
        Enumerable.Range(0, size).Select(r => n / size + (r < n % size ? 1 : 0)).ToArray();

    public abstract void Dispose();
}
