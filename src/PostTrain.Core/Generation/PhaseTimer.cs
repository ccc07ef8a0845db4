// Optional per-phase wall-clock timing for profiling. When enabled, the device is synchronised at the start and
// end of each phase so GPU work is charged to the phase that launched it. Disabled: a no-op struct.
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal sealed class PhaseTimer(bool enabled, Device device, GenerationStats stats)
{
    private void Record(string name, double seconds) => stats.AddPhase(name, seconds);

    /// <summary>Sub-phases are only recorded while Detail is on (off during prefill, which is timed as a whole).</summary>
    public bool Detail { get; set; }

    public Scope Phase(string name) => enabled && Detail ? new Scope(this, name) : default;

    public void Sync()
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    public readonly struct Scope : IDisposable
    {
        private readonly PhaseTimer? owner;
        private readonly string? name;
        private readonly long start;

        internal Scope(PhaseTimer owner, string name)
        {
            this.owner = owner;
            this.name = name;
            owner.Sync();
            start = Stopwatch.GetTimestamp();
        }

        public void Dispose()
        {
            if (owner is null) return;
            owner.Sync();
            owner.Record(name!, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }
}
