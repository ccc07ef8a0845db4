// What a training run needs to know about the model it trains: the module (its named parameters are what the
// optimizer updates), how to write it as a model directory (extra files such as the tokenizer's go in the same
// atomic write) and read its weights back, and the tokenizer directory whose files travel with every save.
// An expert-parallel model also names its layout (the optimizer syncs its experts over their replica group) and a
// collective Consolidate that every rank calls before rank 0 saves (it gathers the experts; disposing releases them).
using PostTrain.Core.Distributed;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

public sealed record RunModel(
    nn.Module Module,
    Action<string, IReadOnlyDictionary<string, string>?> Save,
    Action<string> LoadWeights,
    string? TokenizerDir)
{
    public ExpertParallelism? ExpertParallel { get; init; }
    public Func<IDisposable>? Consolidate { get; init; }
}
