// What a training run needs to know about the model it trains: the module (its named parameters are what the
// optimizer updates), how to write it as a model directory (extra files such as the tokenizer's go in the same
// atomic write) and read its weights back, and the tokenizer directory whose files travel with every save.
// SaveState (full models only): writes given weights (by the module's state-dict names) as a model directory, which
// is how the EMA of the weights is saved; null where a run saves something else (LoRA adapters).
// Sharded: parameters split over the ranks (expert parallel), by name: the slice of the global tensor this rank holds;
// distributed checkpoints store them per rank (DistributedCheckpoint). Empty: every parameter is whole on every rank.
using PostTrain.Core.Checkpoints;
// An expert-parallel model also names its layout (the optimizer syncs its experts over their replica group) and a
// collective Consolidate that every rank calls before rank 0 saves (it gathers the experts; disposing releases them).
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
    public Func<IDisposable>? Consolidate { get; init; }
}
