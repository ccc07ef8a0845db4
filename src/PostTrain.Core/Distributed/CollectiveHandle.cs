// A collective started without waiting for it (ProcessGroup.AllReduceAsync). Wait() blocks until the result is in the
// tensor the call was given (the same timeout and abort as the blocking call); later calls return at once. A handle
// keeps alive what the transfer needs (MPI: a host staging buffer for CUDA or 16-bit tensors) until Wait.
namespace PostTrain.Core.Distributed;

public sealed class CollectiveHandle
{
    private Action? wait;
    private readonly Func<bool>? test;
    private bool transferred;

    /// <param name="wait">Completes the collective (run once, by the first Wait).</param>
    /// <param name="test">Polls once without blocking, true when the transfer is done (null: nothing to poll).</param>
    public CollectiveHandle(Action wait, Func<bool>? test = null) => (this.wait, this.test) = (wait, test);

    private CollectiveHandle() { }

    /// <summary>A collective that already completed (a blocking engine, or one process).</summary>
    public static CollectiveHandle Completed { get; } = new();

    public bool IsWaited => wait is null;

    /// <summary>Lets the engine progress (one poll); true when the transfer is done (Wait() still copies any staged result).</summary>
    public bool Test()
    {
        if (wait is null || transferred) return true;
        if (test is null || !test()) return false;
        return transferred = true;
    }

    public void Wait()
    {
        var w = wait;
        wait = null;
        w?.Invoke();
    }
}
