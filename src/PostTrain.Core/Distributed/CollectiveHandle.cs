// A collective started without waiting for it (ProcessGroup.AllReduceAsync). Wait() blocks until the result is in the
// tensor the call was given (the same timeout and abort as the blocking call); later calls return at once. A handle
// keeps alive what the transfer needs (MPI: a host staging buffer for CUDA or 16-bit tensors) until Wait.
namespace PostTrain.Core.Distributed;

public sealed class CollectiveHandle
{
    private Action? wait;

    /// <param name="wait">Completes the collective (run once, by the first Wait).</param>
    public CollectiveHandle(Action wait) => this.wait = wait;

    private CollectiveHandle() { }

    /// <summary>A collective that already completed (a blocking engine, or one process).</summary>
    public static CollectiveHandle Completed { get; } = new();

    public bool IsWaited => wait is null;

    public void Wait()
    {
        var w = wait;
        wait = null;
        w?.Invoke();
    }
}
