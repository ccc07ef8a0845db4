// A kernel group's decision per CUDA device, made once at the first use on that device (load, self-check) and then
// looked up (never decided inside a CUDA-graph capture); the decision is printed once ("<label> (cuda:N): on (...)" or "off: why") and kept for Status.
using System.Collections.Concurrent;
using static TorchSharp.torch;

namespace PostTrain.Core.Kernels;

internal sealed class PerDeviceChoice<T>(string label, Func<Device, int, (T? Kernels, string Status)> choose) where T : class
{
    private readonly ConcurrentDictionary<int, (T? Kernels, string Status)> perDevice = new();

    /// <summary>The kernels for <paramref name="x"/>'s device, or null off CUDA or when the group is off there.</summary>
    public T? For(Tensor x)
    {
        if (x.device_type == TorchSharp.DeviceType.CPU && cpuOverride.Value is { } forced) return forced;
        if (x.device_type != TorchSharp.DeviceType.CUDA) return null;
        int index = x.device_index < 0 ? 0 : x.device_index;
        if (perDevice.TryGetValue(index, out var known)) return known.Kernels;
        // Undecided inside a CUDA-graph capture: the self-check cannot run there, so the plain ops are captured and the
        // next eager use decides.
        if (Generation.CudaGraph.CapturingOnThisThread) return null;
        lock (perDevice)
        {
            if (perDevice.TryGetValue(index, out known)) return known.Kernels;
            var chosen = choose(x.device, index);
            perDevice[index] = chosen;
            Console.Error.WriteLine($"{label} (cuda:{index}): {chosen.Status}");
            return chosen.Kernels;
        }
    }

    // Kernels for CPU tensors in one async flow (tests: a group's wiring through the model on its reference formulas).
    private readonly AsyncLocal<T?> cpuOverride = new();

    /// <summary>Makes For return <paramref name="kernels"/> for CPU tensors in this async flow until disposed.</summary>
    public IDisposable UseOnCpu(T kernels)
    {
        var previous = cpuOverride.Value;
        cpuOverride.Value = kernels;
        return new PostTrain.Core.Runtime.OnDispose(() => cpuOverride.Value = previous);
    }

    public IReadOnlyDictionary<int, string> Status => perDevice.ToDictionary(p => p.Key, p => p.Value.Status);
}
