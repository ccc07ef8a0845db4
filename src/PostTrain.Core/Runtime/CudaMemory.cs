// The CUDA caching allocator's memory statistics through native/cudagraph (libposttrain_cudagraph.so; TorchSharp
// does not wrap them): bytes allocated now, the peak since the last reset (what torch.cuda.max_memory_allocated()
// reports, so PostTrain and PyTorch are measured the same way) and bytes reserved from the driver. Without the library
// (or off CUDA) Read returns null and the reason.
using System.Runtime.InteropServices;
using PostTrain.Core.Generation;

namespace PostTrain.Core.Runtime;

public sealed record CudaMemoryStats(long AllocatedBytes, long PeakAllocatedBytes, long ReservedBytes);

public static class CudaMemory
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int StatsFn(int device, out long allocated, out long peak, out long reserved);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int ResetFn(int device);

    private sealed record Api(StatsFn? Stats, ResetFn? Reset, string? Error);

    private static readonly Lazy<Api> Loaded = new(Load);

    /// <summary>The allocator's statistics for CUDA device <paramref name="device"/>, or null (why says why).</summary>
    public static CudaMemoryStats? Read(int device, out string why)
    {
        var api = Loaded.Value;
        why = api.Error ?? "";
        if (api.Stats is null) return null;
        if (api.Stats(device, out var a, out var p, out var r) != 0) { why = "ptcg_memory_stats failed"; return null; }
        return new CudaMemoryStats(a, p, r);
    }

    /// <summary>Resets the peak to the current allocation (torch.cuda.reset_peak_memory_stats); false when unavailable.</summary>
    public static bool ResetPeak(int device) => Loaded.Value.Reset is { } f && f(device) == 0;

    private static Api Load()
    {
        var (lib, path, error) = CudaGraph.Library.Value;
        if (error is not null) return new Api(null, null, error);
        var stats = NativeLibraryFile.TryFunction<StatsFn>(lib, "ptcg_memory_stats");
        var reset = NativeLibraryFile.TryFunction<ResetFn>(lib, "ptcg_memory_reset_peak");
        if (stats is null || reset is null) return new Api(null, null, $"{path} has no memory statistics (an older build: rebuild it)");
        return new Api(stats, reset, null);
    }
}
