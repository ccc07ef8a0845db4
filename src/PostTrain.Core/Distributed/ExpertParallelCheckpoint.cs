// Expert-parallel state in the single-process layout. Each rank of an EP group of P holds rows [r E/P, (r+1) E/P) of
// every stacked expert tensor (mlp.experts.{gate,up,down}_proj, and their optimizer moments); Consolidate all-gathers
// them along dim 0 over the EP group, so rank 0 (or any rank) holds the (E, ...) tensors a single process holds and
// exports the same Hugging Face names, shapes and values. Slice is the inverse, for loading a single-process state.
// Saves gather one stack at a time instead (ExpertGatherStream).
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
    /// other entries are the model's own tensors), on the device. A model without expert parallelism returns its state
    /// as is. Saves do not use this (it holds every expert at once): they gather one stack at a time through an
    /// ExpertGatherStream (PretrainedModel.SaveStreamed).</summary>
    public static List<(string Name, Tensor Value)> Consolidate(DeepSeekForCausalLM model)
    {
        var state = model.state_dict().Select(kv => (kv.Key, kv.Value)).ToList();
        if (model.ExpertParallel is not { } ep) return state;
        return state.Select(x => IsExpert(x.Key) ? (x.Key, Gather(ep.Experts, x.Value)) : (x.Key, x.Value)).ToList();
    }

    /// <summary>This rank's rows of every routed-expert stack of the model, by parameter name (what an
    /// ExpertGatherStream gathers for a save).</summary>
    public static Dictionary<string, Tensor> LocalStacks(DeepSeekForCausalLM model) =>
        model.state_dict().Where(kv => IsExpert(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>Every rank's rows of t (equal row counts), concatenated in rank order. Collective over the group.</summary>
    public static Tensor Gather(ProcessGroup group, Tensor t)
    {
        using var noGrad = no_grad();
        return group.AllGatherV(t.detach().contiguous(), Enumerable.Repeat(t.shape[0], group.Size).ToArray());
    }

    /// <summary>A meta tensor (no memory) with the single-process shape of an expert stack of which this rank holds
    /// <paramref name="local"/>'s rows, in an EP group of <paramref name="size"/>: for a streamed save's layout.</summary>
    public static Tensor WholeMeta(Tensor local, int size) =>
        empty([local.shape[0] * size, .. local.shape[1..]], dtype: local.dtype, device: new Device("meta"));

    /// <summary>This rank's rows of a full (E, ...) tensor: [Rank E/P, (Rank+1) E/P).</summary>
    public static Tensor Slice(ProcessGroup group, Tensor full)
    {
        if (full.shape[0] % group.Size != 0)
            throw new ArgumentException($"a tensor of {full.shape[0]} experts does not split over {group.Size} expert-parallel ranks");
        long local = full.shape[0] / group.Size;
        return full.narrow(0, group.Rank * local, local);
    }
}
