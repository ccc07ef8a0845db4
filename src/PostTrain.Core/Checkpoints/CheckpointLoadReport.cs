// What CheckpointLoader.LoadInto did: tensors copied, and names skipped by the allow-lists.
namespace PostTrain.Core.Checkpoints;

public sealed record CheckpointLoadReport(
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> IgnoredUnexpected,
    IReadOnlyList<string> AllowedMissing);
