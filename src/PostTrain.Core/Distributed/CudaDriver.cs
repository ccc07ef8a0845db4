// The few CUDA driver calls (libcuda.so.1, present wherever a GPU driver is) that the NCCL engine needs beside
// libtorch: making a device's primary context current on a thread (NCCL uses the calling thread's current device,
// and TorchSharp has no torch.cuda.set_device), and events on the default stream, which the NCCL watchdog polls to
// see whether a collective has finished without synchronising the training thread.
using System.Runtime.InteropServices;

namespace PostTrain.Core.Distributed;

internal static class CudaDriver
{
    private const string Library = "libcuda.so.1";
    public const int Success = 0;
    public const int NotReady = 600;          // CUDA_ERROR_NOT_READY
    private const uint EventDisableTiming = 2;

    [DllImport(Library)] private static extern int cuInit(uint flags);
    [DllImport(Library)] private static extern int cuDeviceGet(out int device, int ordinal);
    [DllImport(Library)] private static extern int cuDevicePrimaryCtxRetain(out IntPtr ctx, int device);
    [DllImport(Library)] private static extern int cuCtxSetCurrent(IntPtr ctx);
    [DllImport(Library)] private static extern int cuEventCreate(out IntPtr ev, uint flags);
    [DllImport(Library)] private static extern int cuEventRecord(IntPtr ev, IntPtr stream);
    [DllImport(Library)] private static extern int cuEventQuery(IntPtr ev);
    [DllImport(Library, EntryPoint = "cuEventDestroy_v2")] private static extern int cuEventDestroy(IntPtr ev);

    /// <summary>The primary context of CUDA device <paramref name="ordinal"/> (the one libtorch's runtime uses).</summary>
    public static IntPtr PrimaryContext(int ordinal)
    {
        Check(cuInit(0), "cuInit");
        Check(cuDeviceGet(out int dev, ordinal), $"cuDeviceGet({ordinal})");
        Check(cuDevicePrimaryCtxRetain(out var ctx, dev), "cuDevicePrimaryCtxRetain");
        return ctx;
    }

    public static void MakeCurrent(IntPtr ctx) => Check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");

    /// <summary>An event recorded on the default stream after the work enqueued so far.</summary>
    public static IntPtr RecordOnDefaultStream()
    {
        Check(cuEventCreate(out var ev, EventDisableTiming), "cuEventCreate");
        Check(cuEventRecord(ev, IntPtr.Zero), "cuEventRecord");
        return ev;
    }

    /// <summary>True when the event's work is done; false while pending; throws on a CUDA error.</summary>
    public static bool Done(IntPtr ev)
    {
        int rc = cuEventQuery(ev);
        if (rc == NotReady) return false;
        Check(rc, "cuEventQuery");
        return true;
    }

    public static void Destroy(IntPtr ev) => cuEventDestroy(ev);

    private static void Check(int rc, string call)
    {
        if (rc != Success) throw new InvalidOperationException($"{call} failed with CUDA driver error {rc}");
    }
}
