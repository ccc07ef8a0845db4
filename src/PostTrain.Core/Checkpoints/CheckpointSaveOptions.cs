// Options for SafeTensors.SaveDirectory.
namespace PostTrain.Core.Checkpoints;

public sealed record CheckpointSaveOptions
{
    /// <summary>Default shard size limit, as in transformers' save_pretrained ("5GB").</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>Largest shard in bytes of tensor data; a tensor larger than this gets a shard of its own.</summary>
    public long MaxShardBytes { get; init; } = DefaultMaxShardBytes;

    /// <summary>Extra __metadata__ entries for every file ("format": "pt" is always present).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>More text files to place in the directory (file name -> content), e.g. generation_config.json.</summary>
    public IReadOnlyDictionary<string, string>? ExtraFiles { get; init; }

    // Test seam: called after each tensor's bytes are written (a throw simulates a failure midway).
    internal Action<string>? AfterTensorWritten { get; init; }
}
