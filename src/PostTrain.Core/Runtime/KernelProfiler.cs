// libtorch's Kineto profiler (torch.profiler's engine) around a stretch of PostTrain's GPU work, through
// native/profiler (libposttrain_profiler.so, built on the GPU machine by scripts/gpu/build-profiler.sh; TorchSharp does
// not wrap it). The trace is the Chrome JSON torch.profiler writes, so PostTrain's kernels and PyTorch's are summed by
// the same script (benchmarks/hf/kernel_summary.py). Optional: without the library Start says why and nothing is traced.
using System.Runtime.InteropServices;

namespace PostTrain.Core.Runtime;

public static class KernelProfiler
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int StartFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int StopFn([MarshalAs(UnmanagedType.LPUTF8Str)] string path);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate IntPtr ErrorFn();

    private static readonly NativeLibraryFile File = new("POSTTRAIN_PROFILER_LIB", "libposttrain_profiler.so", "scripts/gpu/build-profiler.sh");

    /// <summary>Starts tracing CUDA kernels, copies and memsets; null on success, else why not.</summary>
    public static string? Start()
    {
        var (lib, _, error) = File.Value;
        if (error is not null) return error;
        return NativeLibraryFile.Function<StartFn>(lib, "ptpf_start")() == 0 ? null : $"ptpf_start: {LastError(lib)}";
    }

    /// <summary>Stops tracing and writes the Chrome trace to <paramref name="path"/>; null on success, else why not.</summary>
    public static string? Stop(string path)
    {
        var (lib, _, error) = File.Value;
        if (error is not null) return error;
        return NativeLibraryFile.Function<StopFn>(lib, "ptpf_stop")(path) == 0 ? null : $"ptpf_stop: {LastError(lib)}";
    }

    private static string LastError(IntPtr lib) =>
        Marshal.PtrToStringUTF8(NativeLibraryFile.Function<ErrorFn>(lib, "ptpf_last_error")()) ?? "";
}
