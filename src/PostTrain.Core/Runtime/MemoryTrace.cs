// A memory trace for finding where a large model's GPU memory goes: with POSTTRAIN_MEMORY_TRACE=1 the training
// forward marks the embedding, every decoder layer and the head (any recipe), and the SFT step marks the
// loss, backward and the optimizer update, each line giving the CUDA caching allocator's bytes allocated now and its
// peak (CudaMemory; the host-side counters, no device sync). Off (the default) or without the CUDA-graph library it
// does nothing.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Runtime;

public static class MemoryTrace
{
    public static bool On { get; } = Environment.GetEnvironmentVariable("POSTTRAIN_MEMORY_TRACE") == "1";

    /// <summary>Writes one trace line for <paramref name="what"/> when the trace is on and <paramref name="at"/> is on a
    /// CUDA device.</summary>
    public static void Mark(string what, Tensor at)
    {
        if (!On || at.device_type != DeviceType.CUDA) return;
        if (CudaMemory.Read(at.device_index, out _) is not { } s) return;
        Console.Error.WriteLine($"memtrace {what}: allocated {s.AllocatedBytes / 1e9:F2} GB, peak {s.PeakAllocatedBytes / 1e9:F2} GB, reserved {s.ReservedBytes / 1e9:F2} GB");
    }
}
