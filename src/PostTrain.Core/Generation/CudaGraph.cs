// CUDA graphs through native/cudagraph (libposttrain_cudagraph.so, built against the libtorch the process runs on by
// scripts/gpu/build-cudagraph.sh): capture the kernels one decode step launches once, then replay them with one
// launch per step. TorchSharp does not wrap at::cuda::CUDAGraph, so this is a small P/Invoke layer. The library is
// looked up in POSTTRAIN_CUDAGRAPH_LIB, then next to PostTrain's binaries; without it decoding stays eager.
using System.Runtime.InteropServices;
using PostTrain.Core.Runtime;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

public sealed class CudaGraph : IDisposable
{
    public const string LibraryEnvVar = "POSTTRAIN_CUDAGRAPH_LIB";
    public const string LibraryFileName = "libposttrain_cudagraph.so";

    /// <summary>The loaded library (shared with CudaMemory and CudaAsync, which use its other exports).</summary>
    internal static readonly NativeLibraryFile Library = new(LibraryEnvVar, LibraryFileName, "scripts/gpu/build-cudagraph.sh");

    private IntPtr handle;

    [ThreadStatic] private static bool capturingOnThisThread;

    private CudaGraph(IntPtr handle) => this.handle = handle;

    /// <summary>True while <see cref="Capture"/> runs its body on this thread (kernel groups do not run their first-use
    /// self-check then: it synchronises with the host, which a capture forbids).</summary>
    internal static bool CapturingOnThisThread => capturingOnThisThread;

    /// <summary>Whether the native library loaded (reason says why not).</summary>
    public static bool IsAvailable(out string reason)
    {
        var api = Native.Api.Value;
        reason = api.Error ?? "";
        return api.Error is null;
    }

    /// <summary>Runs <paramref name="body"/> on the calling thread while capturing the CUDA work it launches (the
    /// current stream must be a side stream: see <see cref="EnterSideStream"/>). The body must launch device work
    /// only: no host synchronisation, no host-to-device copies. Nothing runs during capture; call <see cref="Replay"/>.</summary>
    public static CudaGraph Capture(Action body)
    {
        var api = Native.Require();
        Native.Check(api.GraphNew(out var g), "create graph");
        var graph = new CudaGraph(g);
        bool capturing = false;
        try
        {
            Native.Check(api.CaptureBegin(g), "begin capture");
            capturing = true;
            capturingOnThisThread = true;
            try { body(); }
            finally { capturingOnThisThread = false; }
            capturing = false;
            Native.Check(api.CaptureEnd(g), "end capture");
        }
        catch
        {
            if (capturing) api.CaptureEnd(g);   // ends the (invalid) capture; its error is secondary to the body's
            graph.Dispose();
            throw;
        }
        return graph;
    }

    /// <summary>Launches the captured work on the current stream.</summary>
    public void Replay()
    {
        ObjectDisposedException.ThrowIf(handle == IntPtr.Zero, this);
        Native.Check(Native.Require().Replay(handle), "replay");
    }

    /// <summary>Makes a pooled side stream of <paramref name="device"/> current for the calling thread (after the
    /// work already queued) until the returned scope is disposed. Captures need a non-default stream.</summary>
    public static IDisposable EnterSideStream(Device device)
    {
        var api = Native.Require();
        Native.Check(api.EnterSideStream(device.index < 0 ? 0 : device.index, out var h), "enter a side stream");
        return new SideStreamScope(h);
    }

    public void Dispose()
    {
        if (handle == IntPtr.Zero) return;
        Native.Api.Value.GraphDelete(handle);
        handle = IntPtr.Zero;
    }

    private sealed class SideStreamScope(IntPtr h) : IDisposable
    {
        private IntPtr h = h;

        public void Dispose()
        {
            if (h == IntPtr.Zero) return;
            var x = h;
            h = IntPtr.Zero;
            Native.Check(Native.Require().LeaveSideStream(x), "leave the side stream");
        }
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate IntPtr LastErrorFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int EnterFn(int device, out IntPtr handle);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int HandleFn(IntPtr handle);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int NewFn(out IntPtr handle);

    private sealed class Native
    {
        public static readonly Lazy<Native> Api = new(Load);

        public string? Error { get; private init; }
        public LastErrorFn LastError { get; private init; } = null!;
        public EnterFn EnterSideStream { get; private init; } = null!;
        public HandleFn LeaveSideStream { get; private init; } = null!;
        public NewFn GraphNewFn { get; private init; } = null!;
        public HandleFn CaptureBeginFn { get; private init; } = null!;
        public HandleFn CaptureEndFn { get; private init; } = null!;
        public HandleFn ReplayFn { get; private init; } = null!;
        public HandleFn GraphDelete { get; private init; } = null!;

        public int GraphNew(out IntPtr g) => GraphNewFn(out g);
        public int CaptureBegin(IntPtr g) => CaptureBeginFn(g);
        public int CaptureEnd(IntPtr g) => CaptureEndFn(g);
        public int Replay(IntPtr g) => ReplayFn(g);

        public static Native Require()
        {
            var api = Api.Value;
            if (api.Error is not null) throw new InvalidOperationException($"CUDA graphs are unavailable: {api.Error}");
            return api;
        }

        public static void Check(int rc, string what)
        {
            if (rc == 0) return;
            var msg = Marshal.PtrToStringUTF8(Api.Value.LastError()) ?? "";
            throw new InvalidOperationException($"CUDA graph: could not {what}: {msg.Split('\n')[0]}");
        }

        private static Native Load()
        {
            var (lib, path, error) = Library.Value;
            if (error is not null) return new Native { Error = error };
            T Fn<T>(string name) where T : Delegate => NativeLibraryFile.Function<T>(lib, name);
            try
            {
                return new Native
                {
                    LastError = Fn<LastErrorFn>("ptcg_last_error"),
                    EnterSideStream = Fn<EnterFn>("ptcg_enter_side_stream"),
                    LeaveSideStream = Fn<HandleFn>("ptcg_leave_side_stream"),
                    GraphNewFn = Fn<NewFn>("ptcg_graph_new"),
                    CaptureBeginFn = Fn<HandleFn>("ptcg_capture_begin"),
                    CaptureEndFn = Fn<HandleFn>("ptcg_capture_end"),
                    ReplayFn = Fn<HandleFn>("ptcg_replay"),
                    GraphDelete = Fn<HandleFn>("ptcg_graph_delete"),
                };
            }
            catch (EntryPointNotFoundException e)
            {
                return new Native { Error = $"{path}: {e.Message}" };
            }
        }
    }
}
