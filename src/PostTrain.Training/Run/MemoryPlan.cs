// The memory a training run's state takes, from the actual tensors and the optimizer config, printed when a run starts
// so a user sees where a large model's bytes go before the first step: the model's parameters (all of them, frozen
// or not, in their device dtype), the trained parameters' gradients (their dtype), AdamW's state (fp32 masters when
// offloaded or when the parameters are bf16, moments in fp32 or bf16, on the device or in host memory) and the EMA's
// host copy. Activations, the KV cache of rollouts and allocator slack come on top and are not estimated here.
using PostTrain.Training.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

public sealed record MemoryPlan(long ModelBytes, long GradientBytes, long OptimizerDeviceBytes, long OptimizerHostBytes, long EmaHostBytes)
{
    public long DeviceBytes => ModelBytes + GradientBytes + OptimizerDeviceBytes;
    public long HostBytes => OptimizerHostBytes + EmaHostBytes;

    /// <param name="model">The whole model (a LoRA run's frozen base included).</param>
    /// <param name="trained">The module whose parameters the optimizer updates (the model, or its adapters).</param>
    public static MemoryPlan Of(nn.Module model, nn.Module trained, OptimizerConfig o, EmaConfig? ema)
    {
        var ps = trained.parameters().ToList();
        long modelBytes = model.parameters().Sum(p => p.numel() * p.ElementSize);
        long n = ps.Sum(p => p.numel());
        long grads = ps.Sum(p => p.numel() * p.ElementSize);
        long moments = o.Name == OptimizerKind.AdamW ? n * 2 * (o.Bf16Moments ? 2 : 4) : 0;
        long state = o.Offload == OptimizerOffload.Host ? moments + n * 4 + grads : moments;   // host: + fp32 masters + gradient buffers
        long emaBytes = ema is null ? 0 : n * 4;
        return o.Offload == OptimizerOffload.Host
            ? new MemoryPlan(modelBytes, grads, 0, state, emaBytes)
            : new MemoryPlan(modelBytes, grads, state, 0, emaBytes);
    }

    public override string ToString() =>
        $"memory plan: device {Gb(DeviceBytes)} (parameters {Gb(ModelBytes)}, gradients {Gb(GradientBytes)}, optimizer state {Gb(OptimizerDeviceBytes)}), " +
        $"host {Gb(HostBytes)} (optimizer state {Gb(OptimizerHostBytes)}, EMA {Gb(EmaHostBytes)}); activations come on top";

    private static string Gb(long bytes) => $"{bytes / 1e9:F2} GB";
}
