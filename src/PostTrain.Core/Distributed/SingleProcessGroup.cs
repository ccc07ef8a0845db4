// The process group of a run with one process: every collective is the identity, nothing native is loaded.
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed class SingleProcessGroup : ProcessGroup
{
    public static readonly SingleProcessGroup Instance = new();

    public override int Rank => 0;
    public override int Size => 1;
    public override void AllReduce(Tensor t, ReduceOp op = ReduceOp.Sum) { }
    public override void Broadcast(Tensor t, int root) { }
    public override Tensor AllGatherV(Tensor input, long[] rows) => input.clone();
    public override Tensor ReduceScatterV(Tensor input, long[] rows) => input.clone();
    public override Tensor AllToAllV(Tensor input, long[] sendRows, long[] recvRows) => input.clone();
    public override void Barrier() { }
    public override ProcessGroup Split(int color, int key) => this;
    public override void Abort(int code, string message) => throw new InvalidOperationException(message);
    public override void Dispose() { }
}
