// Engine settings that do not change what is sampled (except SpeculativeMtp, which only applies to greedy decoding
// and gives the same tokens): batch size, row compaction, the text decoder for stop strings, profiling.
namespace PostTrain.Core.Generation;

public sealed record GenerationOptions
{
    /// <summary>Prompts are generated in chunks of at most this many sequences (one KV cache per chunk).</summary>
    public int MaxBatchSize { get; init; } = 256;

    /// <summary>Greedy only: the model's first MTP module drafts one token per step and the main model verifies the
    /// pending token and the draft in one 2-token forward. Output is identical to plain greedy decoding.</summary>
    public bool SpeculativeMtp { get; init; }

    /// <summary>Turns token ids into text for stop strings. Required when <see cref="SamplingParams.StopStrings"/> is set.</summary>
    public ITextDecoder? Decoder { get; init; }

    /// <summary>Finished rows are dropped from the batch (cache rows copied) once at least this fraction of the
    /// current batch has finished. 1 = never compact.</summary>
    public double CompactFinishedFraction { get; init; } = 0.25;

    /// <summary>MoE layers run every expert on every token (routing weights zero for unchosen experts: no host sync,
    /// three GEMMs) when tokens * experts * moe_intermediate_size stays below this; else the grouped routed path.</summary>
    public long DenseMoeMaxElements { get; init; } = 1L << 26;

    /// <summary>Synchronise the device around phases and record a per-phase breakdown in <see cref="GenerationStats"/>.
    /// Slows generation down; for benchmarks.</summary>
    public bool Profile { get; init; }

    public void Validate()
    {
        if (MaxBatchSize < 1) throw new ArgumentException($"GenerationOptions.MaxBatchSize must be >= 1 (got {MaxBatchSize})");
        if (double.IsNaN(CompactFinishedFraction) || CompactFinishedFraction <= 0 || CompactFinishedFraction > 1)
            throw new ArgumentException($"GenerationOptions.CompactFinishedFraction must be in (0, 1] (got {CompactFinishedFraction})");
        if (DenseMoeMaxElements < 0) throw new ArgumentException($"GenerationOptions.DenseMoeMaxElements must be >= 0 (got {DenseMoeMaxElements})");
    }
}
