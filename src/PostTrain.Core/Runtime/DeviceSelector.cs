// Device selection for recipes and the CLI: "auto" (CUDA when TorchSharp finds a usable CUDA libtorch, else CPU),
// "cpu", "cuda" or "cuda:N". Asking for CUDA where there is none is a clear error, never a silent CPU run. In a run of
// several ranks "auto" and "cuda" mean this rank's own GPU: cuda:(local rank mod the visible devices), one process
// per device.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Runtime;

public sealed class DeviceUnavailableException(string message) : Exception(message);

public static class DeviceSelector
{
    private static bool? cudaReady;

    /// <summary>True when a CUDA libtorch is loaded and a GPU is visible.</summary>
    public static bool CudaAvailable()
    {
        if (cudaReady is bool b) return b;
        try
        {
            if (!cuda.is_available()) InitializeDeviceType(DeviceType.CUDA);
            cudaReady = cuda.is_available();
        }
        catch (Exception) { cudaReady = false; }
        return cudaReady.Value;
    }

    public static Device Resolve(string? spec, string key = "device")
    {
        string s = (spec ?? "auto").Trim().ToLowerInvariant();
        if (s == "auto") return CudaAvailable() ? RankDevice(CUDA) : CPU;
        if (s == "cpu") return CPU;
        if (s == "cuda" || s.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!CudaAvailable())
                throw new DeviceUnavailableException(
                    $"{key}: '{spec}' asked for CUDA, but no CUDA device is usable here (this build runs on the CPU libtorch, or no GPU is visible). " +
                    "Use device=cpu, or run a CUDA build (see README: 'Using a CUDA machine').");
            if (s == "cuda") return RankDevice(new Device(DeviceType.CUDA, 0));
            int index = int.TryParse(s[5..], out int i) && i >= 0 ? i
                : throw new DeviceUnavailableException($"{key}: '{spec}' is not a device (use auto, cpu, cuda or cuda:N).");
            if (index >= cuda.device_count())
                throw new DeviceUnavailableException($"{key}: '{spec}' but only {cuda.device_count()} CUDA device(s) are visible.");
            return new Device(DeviceType.CUDA, index);
        }
        throw new DeviceUnavailableException($"{key}: '{spec}' is not a device (use auto, cpu, cuda or cuda:N).");
    }

    /// <summary><paramref name="single"/> for one process; this rank's GPU (local rank mod device count) for a rank of several.</summary>
    private static Device RankDevice(Device single)
    {
        var env = Distributed.DistEnv.FromEnvironment();
        return env.IsDistributed ? new Device(DeviceType.CUDA, env.LocalRank % Math.Max(1, (int)cuda.device_count())) : single;
    }
}
