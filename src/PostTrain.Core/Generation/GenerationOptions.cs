// Engine settings that do not change what is sampled (except SpeculativeMtp, which only applies to greedy decoding
// and gives the same tokens): batch size, row compaction, the text decoder for stop strings, profiling.
namespace PostTrain.Core.Generation;

public sealed record GenerationOptions
{
    /// <summary>Prompts are generated in chunks of at most this many sequences (one KV cache per chunk).</summary>
    public int MaxBatchSize { get; init; } = 256;

    /// <summary>Greedy only: the model's first MTP module drafts one token per step and the main model verifies the
    /// pending token and the draft in one 2-token forward, acceptance decided on the device (a static-shape step that
    /// CUDA graphs capture as they do plain decoding's). Output is identical to plain greedy decoding.</summary>
    public bool SpeculativeMtp { get; init; }

    /// <summary>Record the experts every input token was routed to in each MoE layer (GenerationResult.Routing), for
    /// routing replay in RL training. Plain decoding only (not with SpeculativeMtp).</summary>
    public bool RecordRouting { get; init; }

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

    /// <summary>Decoding on CUDA (plain or SpeculativeMtp) captures one decode step as a CUDA graph and replays it: one
    /// launch per step instead of one per op. Auto: when the device is CUDA, Profile is off and the native library
    /// loads (<see cref="CudaGraph"/>); a capture that fails falls back to eager steps. On: required (an error where
    /// it cannot run). Off: eager. Sampled tokens are the same either way (up to fp rounding in attention).</summary>
    public CudaGraphMode CudaGraphs { get; init; } = CudaGraphMode.Auto;

    /// <summary>Tests: run the static-shape decode step that graphs capture, eagerly, on any device.</summary>
    internal bool StaticDecodeStep { get; init; }

    /// <summary>Whether this call's decoding captures CUDA graphs (and why not, when it cannot and must).</summary>
    internal bool UseCudaGraphs(TorchSharp.torch.Device device)
    {
        if (CudaGraphs == CudaGraphMode.Off) return false;
        bool cuda = device.type == TorchSharp.DeviceType.CUDA;
        bool lib = CudaGraph.IsAvailable(out var why);
        if (CudaGraphs == CudaGraphMode.On)
        {
            if (!cuda) throw new ArgumentException($"GenerationOptions.CudaGraphs = On needs a CUDA device (got {device})");
            if (!lib) throw new ArgumentException($"GenerationOptions.CudaGraphs = On: {why}");
            if (Profile) throw new ArgumentException("GenerationOptions.CudaGraphs = On cannot profile phases (Profile synchronises inside the step)");
            return true;
        }
        return cuda && lib && !Profile;
    }

    public void Validate()
    {
        if (MaxBatchSize < 1) throw new ArgumentException($"GenerationOptions.MaxBatchSize must be >= 1 (got {MaxBatchSize})");
        if (double.IsNaN(CompactFinishedFraction) || CompactFinishedFraction <= 0 || CompactFinishedFraction > 1)
            throw new ArgumentException($"GenerationOptions.CompactFinishedFraction must be in (0, 1] (got {CompactFinishedFraction})");
        if (RecordRouting && SpeculativeMtp) throw new ArgumentException("GenerationOptions.RecordRouting works with plain decoding only (SpeculativeMtp is on)");
        if (DenseMoeMaxElements < 0) throw new ArgumentException($"GenerationOptions.DenseMoeMaxElements must be >= 0 (got {DenseMoeMaxElements})");
    }
}

public enum CudaGraphMode { Auto, On, Off }
