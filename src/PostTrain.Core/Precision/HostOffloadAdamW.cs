// AdamW with its state in host memory (ZeRO-Offload style, one process): the fp32 master weights and the moments (fp32,
// or bf16 as in DeepSeek-V3) live on the host, pinned when the parameters are on CUDA so the copies are DMA; the device
// keeps only the parameters in their own dtype (bf16 for a 16B model: 2 bytes per parameter instead of 4 + 8) and
// their gradients. A step:
//   1. every gradient is copied device -> pinned host buffer (non-blocking), then one synchronisation;
//   2. per parameter, the host AdamW update (the AdamW class itself: the same maths, the same state names) runs on the
//      fp32 master, and the updated master is copied back to the device parameter (cast to its dtype, non-blocking),
//      so the upload of parameter i overlaps the host update of parameter i + 1, and the last uploads overlap whatever
//      the host does next (data, logging) until the device needs the weights.
// The masters start from the device parameters' values (a bf16 checkpoint loses nothing). State: AdamW's keys plus
// "{name}.master" (fp32), so a resume restores the exact masters, not their bf16 rounding. StateDict returns aliases
// of the host state (no copy: 12 bytes per parameter would not fit twice), valid until the next step.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public sealed class HostOffloadAdamW : IOptimizer
{
    private readonly (string Name, Parameter Param)[] device;
    private readonly Parameter[] masters;        // fp32, host (pinned for CUDA parameters)
    private readonly Tensor[] hostGrads;         // host buffers (the parameters' dtype) the device gradients land in, pinned for CUDA
    private readonly AdamW host;

    public double LearningRate { get => host.LearningRate; set => host.LearningRate = value; }
    public IReadOnlyList<Parameter> Parameters => device.Select(p => p.Param).ToArray();
    public bool Bf16Moments => host.Bf16Moments;

    public HostOffloadAdamW(IEnumerable<(string Name, Parameter Param)> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0.01, bool bf16Moments = false, IEnumerable<string>? noDecay = null)
    {
        device = parameters.ToArray();
        using (no_grad())
        {
            masters = device.Select(p => nn.Parameter(Pinned(p.Param, p.Param.detach().to(ScalarType.Float32, CPU, copy: true)))).ToArray();
            hostGrads = device.Select(p => Pinned(p.Param, zeros(p.Param.shape, dtype: p.Param.dtype))).ToArray();
        }
        foreach (var t in masters.Concat(hostGrads)) t.DetachFromDisposeScope();
        host = new AdamW(device.Select((p, i) => (p.Name, masters[i])), lr, beta1, beta2, eps, weightDecay, bf16Moments, noDecay);
    }

    private static Tensor Pinned(Tensor like, Tensor hostTensor) =>
        like.device_type == DeviceType.CUDA ? hostTensor.pin_memory() : hostTensor;

    public void Step()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bool cuda = false;
        for (int i = 0; i < device.Length; i++)
        {
            var g = device[i].Param.grad;
            if (g is null) { masters[i].grad = null; continue; }
            cuda |= g.device_type == DeviceType.CUDA;
            hostGrads[i].copy_(g, nonBlocking: true);
            masters[i].grad = hostGrads[i];
        }
        if (cuda) torch.cuda.synchronize();
        for (int i = 0; i < device.Length; i++)
        {
            if (masters[i].grad is null) continue;
            host.StepParam(i);
            device[i].Param.copy_(masters[i], nonBlocking: true);
        }
    }

    public void ZeroGrad()
    {
        foreach (var (_, p) in device) p.grad?.zero_();
    }

    /// <summary>Aliases of the host state (AdamW's keys plus "{name}.master"), valid until the next step.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var state = host.StateDict(copy: false);
        for (int i = 0; i < device.Length; i++) state[device[i].Name + ".master"] = masters[i].detach().alias().DetachFromDisposeScope();
        return state;
    }

    /// <summary>Restores the moments, steps and masters, and the device parameters from the masters.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        host.LoadStateDict(state);
        using var noGrad = no_grad();
        for (int i = 0; i < device.Length; i++)
        {
            string key = device[i].Name + ".master";
            if (!state.TryGetValue(key, out var m) || !m.shape.SequenceEqual(masters[i].shape))
                throw new ArgumentException($"host-offloaded AdamW state is missing '{key}' or it has the wrong shape.", nameof(state));
            masters[i].copy_(m);
            device[i].Param.copy_(masters[i]);
        }
    }

    public void Dispose()
    {
        host.Dispose();
        foreach (var t in masters.Concat(hostGrads)) t.Dispose();
    }
}
