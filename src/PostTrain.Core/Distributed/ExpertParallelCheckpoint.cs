// Expert-parallel state in the single-process layout. Each rank of an EP group of P holds rows [r E/P, (r+1) E/P) of
// every stacked expert tensor (mlp.experts.{gate,up,down}_proj, and their optimizer moments); Consolidate all-gathers
// them along dim 0 over the EP group, so rank 0 (or any rank) holds the (E, ...) tensors a single process holds and
// exports the same Hugging Face names, shapes and values. Slice is the inverse, for loading a single-process state.
using System.Text.RegularExpressions;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public static partial class ExpertParallelCheckpoint
{
    [GeneratedRegex(@"(^|\.)mlp\.experts\.(gate_proj|up_proj|down_proj)($|\.)")]
    private static partial Regex ExpertStack();

    /// <summary>Whether a parameter (or an optimizer-state key starting with its name) is a stacked routed-expert tensor.</summary>
    public static bool IsExpert(string name) => ExpertStack().IsMatch(name);

    /// <summary>The model's state_dict with every expert stack gathered over the EP group (collective over it; the
    /// other entries are the model's own tensors). A model without expert parallelism returns its state as is.
    /// With <paramref name="writer"/> set (for a save that one rank writes), each gathered stack is moved to the host
    /// at once, so the device holds one gathered stack at a time (a 16B model's experts are ~30 GB in bf16), and it
    /// is kept only where <paramref name="writer"/> is true: the other ranks take part in the gathers and return the
    /// state without the experts.</summary>
    public static List<(string Name, Tensor Value)> Consolidate(DeepSeekForCausalLM model, bool? writer = null)
    {
        var state = model.state_dict().Select(kv => (kv.Key, kv.Value)).ToList();
        if (model.ExpertParallel is not { } ep) return state;
        var result = new List<(string Name, Tensor Value)>(state.Count);
        foreach (var (name, value) in state)
        {
            if (!IsExpert(name)) { result.Add((name, value)); continue; }
            if (GatherFor(ep.Experts, value, writer) is { } gathered) result.Add((name, gathered));
        }
        return result;
    }

    /// <summary>t gathered over the group (collective), for a save: writer null keeps it on the device; true returns a
    /// host copy outside every dispose scope (the device copy freed at once); false frees it and returns null.</summary>
    public static Tensor? GatherFor(ProcessGroup group, Tensor t, bool? writer)
    {
        var gathered = Gather(group, t);
        if (writer is null) return gathered;
        Tensor? kept = null;
        if (writer.Value) kept = (gathered.device_type == TorchSharp.DeviceType.CPU ? gathered.clone() : gathered.cpu()).DetachFromDisposeScope();
        gathered.Dispose();
        return kept;
    }

    /// <summary>Every rank's rows of t (equal row counts), concatenated in rank order. Collective over the group.</summary>
    public static Tensor Gather(ProcessGroup group, Tensor t)
    {
        using var noGrad = no_grad();
        return group.AllGatherV(t.detach().contiguous(), Enumerable.Repeat(t.shape[0], group.Size).ToArray());
    }

    /// <summary>This rank's rows of a full (E, ...) tensor: [Rank E/P, (Rank+1) E/P).</summary>
    public static Tensor Slice(ProcessGroup group, Tensor full)
    {
        if (full.shape[0] % group.Size != 0)
            throw new ArgumentException($"a tensor of {full.shape[0]} experts does not split over {group.Size} expert-parallel ranks");
        long local = full.shape[0] / group.Size;
        return full.narrow(0, group.Rank * local, local);
    }
}
