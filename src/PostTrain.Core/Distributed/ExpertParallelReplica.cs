// A full copy of an expert-parallel model for sampling: every routed expert on this rank, gathered from the EP group's
// slices, so the generation engine (latent KV cache, CUDA-graph decode, fused decode kernels) runs as in one process,
// with no collective inside a decode step and no lockstep between ranks whose rows end at different lengths.
// Sync() refreshes it from the trained model (a collective over the EP group: every rank calls it at the same point);
// the copy's tensors keep their storage, so a captured decode graph stays valid across syncs. It routes like the
// trained model: the same correction biases (part of the state), and the same device limit per token when the trained
// model has one. Cost: the whole model's weights once more per rank (the 16B model: 32 GB in bf16), and one all-gather
// of the routed experts per sync.
using PostTrain.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed class ExpertParallelReplica : IDisposable
{
    private readonly DeepSeekForCausalLM _trained;
    private readonly ExpertParallelism _ep;

    /// <summary>The full model; no parameter requires gradients.</summary>
    public DeepSeekForCausalLM Model { get; }

    public ExpertParallelReplica(DeepSeekForCausalLM trained)
    {
        _trained = trained;
        _ep = trained.ExpertParallel ?? throw new ArgumentException("ExpertParallelReplica: the model holds every expert already (no expert parallelism)");
        var device = trained.HeadWeight.device;
        Model = new DeepSeekForCausalLM(trained.Config, device);
        Model.SetPrecision(trained.Precision, trained.Fp8MinDim);
        if (trained.HeadWeight.dtype != Model.HeadWeight.dtype) Model.to(trained.HeadWeight.dtype);   // as ModelSetup's param_dtype
        foreach (var p in Model.parameters()) p.requires_grad = false;
        Model.eval();
        if (_ep.MaxDevicesPerToken < _ep.Size)
            foreach (var moe in Model.MoeLayers())
                moe.Gate.SelectionFilter = choice => DeviceLimitedRouting.Mask(choice, _ep.Size, _ep.MaxDevicesPerToken, trained.Config.NumExpertsPerTok);
        Sync();
    }

    /// <summary>Bytes the copy holds on its device.</summary>
    public long Bytes => Model.state_dict().Values.Sum(t => t.numel() * t.ElementSize);

    /// <summary>Copies the trained model's weights in: its own tensors as they are, the routed experts gathered over the EP
    /// group one stack at a time (so the transient memory is one layer's experts, ~1.1 GB at the 16B model's shapes, not
    /// all of them). Collective over the EP group.</summary>
    public void Sync()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var target = Model.state_dict();
        var source = _trained.state_dict();
        if (source.Count != target.Count || source.Keys.Any(k => !target.ContainsKey(k)))
            throw new InvalidOperationException("ExpertParallelReplica: the full model's tensors are not the expert-parallel model's: " +
                string.Join(", ", source.Keys.Except(target.Keys).Concat(target.Keys.Except(source.Keys)).Take(5)));
        foreach (var (name, value) in source)
        {
            bool expert = ExpertParallelCheckpoint.IsExpert(name);
            var full = expert ? ExpertParallelCheckpoint.Gather(_ep.Experts, value) : value;
            var t = target[name];
            if (!t.shape.SequenceEqual(full.shape))
                throw new InvalidOperationException($"ExpertParallelReplica: {name} is [{string.Join(", ", full.shape)}] in the trained model, [{string.Join(", ", t.shape)}] here");
            t.copy_(full);
            if (expert) full.Dispose();
        }
    }

    public void Dispose() => Model.Dispose();
}
