// An IDisposable that runs an action once, on the first Dispose: the "undo on leaving the using block" of scoped settings
// (restore a previous value, reattach adapters, release a slot).
namespace PostTrain.Core.Runtime;

public sealed class OnDispose(Action action) : IDisposable
{
    private Action? pending = action;

    public void Dispose() => Interlocked.Exchange(ref pending, null)?.Invoke();
}
