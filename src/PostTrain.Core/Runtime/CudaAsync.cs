// Device work that the training stream does not wait for, through native/cudagraph (libposttrain_cudagraph.so;
// TorchSharp wraps no CUDA streams or events): Run queues a body's kernels and copies on a side stream (ordered after
// the work already queued on the current stream) and returns a CudaEvent marking their end; later work that must
// follow them waits for the event on the device (Block: the current stream) or on the host (Synchronize). The host
// EMA copies the weights to the host this way while the next step's forward and backward run.
//
// Before the first use on a device a self-check copies a large device tensor to pinned host memory on a side
// stream, changes the tensor on the current stream after Block, and checks that the host holds the values from
// before the change (so the copy ran and the change waited for it). Without the library, off CUDA, or when the check
// fails, IsAvailable says why and callers copy synchronously as before.
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using PostTrain.Core.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Runtime;

public static class CudaAsync
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int BeginFn(int device, out IntPtr handle);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int EndFn(IntPtr handle, out IntPtr evt);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int EventFn(IntPtr evt);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate IntPtr LastErrorFn();

    private sealed record Api(BeginFn? Begin, EndFn? End, EventFn? Block, EventFn? Synchronize, EventFn? Delete, LastErrorFn? LastError, string? Error);

    private static readonly Lazy<Api> Loaded = new(Load);
    private static readonly ConcurrentDictionary<int, string> Checked = new();   // device -> "" (passed) or why not

    /// <summary>Whether side-stream work with events can be used on <paramref name="device"/> (a CUDA device; the
    /// first call runs the self-check there). <paramref name="why"/> says why not.</summary>
    public static bool IsAvailable(Device device, out string why)
    {
        if (device.type != DeviceType.CUDA) { why = "not a CUDA device"; return false; }
        var api = Loaded.Value;
        if (api.Error is not null) { why = api.Error; return false; }
        why = Checked.GetOrAdd(device.index < 0 ? 0 : device.index, _ => SelfCheck(device));
        return why.Length == 0;
    }

    /// <summary>Runs <paramref name="body"/> on the calling thread with a side stream of <paramref name="device"/>
    /// current (ordered after the work already queued), then restores the previous stream without ordering it after
    /// the side stream. The returned event marks the end of the body's device work.</summary>
    public static CudaEvent Run(Device device, Action body)
    {
        var api = Require();
        Check(api.Begin!(device.index < 0 ? 0 : device.index, out var h), "enter a side stream");
        Exception? failure = null;
        try { body(); }
        catch (Exception e) { failure = e; }
        int rc = api.End!(h, out var evt);                      // restores the stream whether or not the body threw
        if (failure is not null)
        {
            if (rc == 0) api.Delete!(evt);
            ExceptionDispatchInfo.Throw(failure);
        }
        Check(rc, "leave the side stream");
        return new CudaEvent(evt);
    }

    private static Api Require()
    {
        var api = Loaded.Value;
        if (api.Error is not null) throw new InvalidOperationException($"CUDA side streams are unavailable: {api.Error}");
        return api;
    }

    private static void Check(int rc, string what)
    {
        if (rc == 0) return;
        var msg = Loaded.Value.LastError is { } f ? Marshal.PtrToStringUTF8(f()) ?? "" : "";
        throw new InvalidOperationException($"CUDA: could not {what}: {msg.Split('\n')[0]}");
    }

    internal static void EventBlock(IntPtr e) => Check(Require().Block!(e), "make the current stream wait for an event");
    internal static void EventSynchronize(IntPtr e) => Check(Require().Synchronize!(e), "wait for an event");
    internal static void EventDelete(IntPtr e) => Require().Delete!(e);

    /// <summary>The self-check (see the header): "" when it passes, else why not.</summary>
    private static string SelfCheck(Device device)
    {
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            const long n = 1L << 26;                                // 256 MB of fp32: a copy that takes milliseconds
            var x = arange(n, dtype: ScalarType.Float32, device: device);
            var host = empty(n, dtype: ScalarType.Float32).pin_memory();
            torch.cuda.synchronize();
            using var copied = Run(device, () => host.copy_(x, nonBlocking: true));
            copied.Block();
            x.mul_(-1);                                             // must run after the copy has read x
            copied.Synchronize();
            torch.cuda.synchronize();
            var expect = arange(n, dtype: ScalarType.Float32);
            if (!host.equal(expect).all().item<bool>()) return "self-check failed: the host copy does not hold the values from before the later change";
            if (!x.cpu().equal(-expect).all().item<bool>()) return "self-check failed: the change after the copy is missing";
            return "";
        }
        catch (Exception e)
        {
            return $"self-check failed: {e.Message}";
        }
    }

    private static Api Load()
    {
        var (lib, path, error) = CudaGraph.Library.Value;
        Api Fail(string why) => new(null, null, null, null, null, null, why);
        if (error is not null) return Fail(error);
        var begin = NativeLibraryFile.TryFunction<BeginFn>(lib, "ptcg_async_begin");
        var end = NativeLibraryFile.TryFunction<EndFn>(lib, "ptcg_async_end");
        var block = NativeLibraryFile.TryFunction<EventFn>(lib, "ptcg_event_block");
        var sync = NativeLibraryFile.TryFunction<EventFn>(lib, "ptcg_event_synchronize");
        var delete = NativeLibraryFile.TryFunction<EventFn>(lib, "ptcg_event_delete");
        var lastError = NativeLibraryFile.TryFunction<LastErrorFn>(lib, "ptcg_last_error");
        if (begin is null || end is null || block is null || sync is null || delete is null || lastError is null)
            return Fail($"{path} has no side-stream events (an older build: rebuild it)");
        return new Api(begin, end, block, sync, delete, lastError, null);
    }
}

/// <summary>A recorded CUDA event (from CudaAsync.Run): Block makes the current stream wait for it, Synchronize the
/// calling thread. Thread-safe to wait on from any thread; disposed once.</summary>
public sealed class CudaEvent : IDisposable
{
    private IntPtr handle;

    internal CudaEvent(IntPtr handle) => this.handle = handle;

    /// <summary>The current stream's later work waits for the event (no host wait).</summary>
    public void Block() => CudaAsync.EventBlock(Handle);

    /// <summary>The calling thread waits until the event's work has finished.</summary>
    public void Synchronize() => CudaAsync.EventSynchronize(Handle);

    private IntPtr Handle => handle != IntPtr.Zero ? handle : throw new ObjectDisposedException(nameof(CudaEvent));

    public void Dispose()
    {
        var h = Interlocked.Exchange(ref handle, IntPtr.Zero);
        if (h != IntPtr.Zero) CudaAsync.EventDelete(h);
    }
}
