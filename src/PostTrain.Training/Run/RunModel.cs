// What a training run needs to know about the model it trains: the module (its named parameters are what the
// optimizer updates), how to write it as a model directory (extra files such as the tokenizer's go in the same
// atomic write) and read its weights back, and the tokenizer directory whose files travel with every save.
// SaveState (full models only): writes given weights (by the module's state-dict names) as a model directory, which
// is how the EMA of the weights is saved; null where a run saves something else (LoRA adapters).
// Sharded: parameters split over the ranks (expert parallel), by name: the slice of the global tensor this rank holds;
// distributed checkpoints store them per rank (DistributedCheckpoint). Empty: every parameter is whole on every rank.
using PostTrain.Core.Checkpoints;
// An expert-parallel model also names its layout (the optimizer syncs its experts over their replica group), its local
// expert stacks, and SaveStreamed, which the EP group's rank 0 runs with an ExpertGatherStream the group's other ranks
// serve (each expert stack gathered as the writer reaches it); Save is refused for it.
using PostTrain.Core.Distributed;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

public sealed record RunModel(
    nn.Module Module,
    Action<string, IReadOnlyDictionary<string, string>?> Save,
    Action<string> LoadWeights,
    string? TokenizerDir,
    Action<string, IReadOnlyDictionary<string, Tensor>, IReadOnlyDictionary<string, string>?>? SaveState = null,
    IReadOnlyDictionary<string, TensorSlice>? Sharded = null)
{
    public ExpertParallelism? ExpertParallel { get; init; }
    /// <summary>The decoder the module computes with when the module does not contain it (LoRA adapters), else null.</summary>
    public PostTrain.Core.Model.DeepSeekForCausalLM? Decoder { get; init; }
    /// <summary>Expert parallel: this rank's rows of every routed-expert stack, by parameter name.</summary>
    public Func<IReadOnlyDictionary<string, Tensor>>? ExpertStacks { get; init; }
    /// <summary>Expert parallel: the writer's save (directory, extra files), gathering the experts through the stream.</summary>
    public Action<string, IReadOnlyDictionary<string, string>?, ExpertGatherStream>? SaveStreamed { get; init; }
}
