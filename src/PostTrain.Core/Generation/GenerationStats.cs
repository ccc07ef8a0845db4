// Counters and timings of the last Generate call: throughput, prefill/decode split, speculative acceptance, and
// (with GenerationOptions.Profile) a per-phase breakdown measured with device synchronisation around each phase.
namespace PostTrain.Core.Generation;

public sealed class GenerationStats
{
    public int Sequences { get; internal set; }
    public long PromptTokens { get; internal set; }
    public long GeneratedTokens { get; internal set; }
    /// <summary>Forward passes after prefill (one per decode step; a speculative step counts once).</summary>
    public int DecodeSteps { get; internal set; }
    public double PrefillSeconds { get; internal set; }
    public double DecodeSeconds { get; internal set; }
    public double TotalSeconds { get; internal set; }
    /// <summary>MTP drafts checked by the main model, and how many it accepted.</summary>
    public long DraftsProposed { get; internal set; }
    public long DraftsAccepted { get; internal set; }
    /// <summary>How decoding ran: "eager", "static" (the graph step, not captured) or "cuda-graph"; with SpeculativeMtp
    /// "mtp-static" or "mtp-cuda-graph".</summary>
    public string DecodeMode { get; internal set; } = "eager";
    /// <summary>CUDA graphs captured (one per batch shape: a compaction of finished rows recaptures).</summary>
    public int GraphCaptures { get; internal set; }
    /// <summary>Why a CUDA-graph capture failed and decoding fell back to eager steps, else null.</summary>
    public string? GraphFallback { get; internal set; }
    public double AcceptanceRate => DraftsProposed == 0 ? 0 : (double)DraftsAccepted / DraftsProposed;
    public double TokensPerSecond => TotalSeconds == 0 ? 0 : GeneratedTokens / TotalSeconds;
    /// <summary>Seconds per decode phase (attention, mlp, moe, mtp, head, sampling, host) when profiling, else empty.</summary>
    public Dictionary<string, double> PhaseSeconds { get; } = new();

    internal void AddPhase(string phase, double seconds) =>
        PhaseSeconds[phase] = PhaseSeconds.GetValueOrDefault(phase) + seconds;

    public override string ToString()
    {
        var s = $"{Sequences} seqs, {PromptTokens} prompt + {GeneratedTokens} new tokens in {TotalSeconds:F3} s " +
                $"({TokensPerSecond:F1} tok/s; prefill {PrefillSeconds:F3} s, decode {DecodeSeconds:F3} s, {DecodeSteps} steps)";
        if (DecodeMode != "eager") s += $"; decode {DecodeMode}" + (GraphCaptures > 0 ? $" ({GraphCaptures} captures)" : "");
        if (GraphFallback is not null) s += $"; CUDA graph fell back to eager: {GraphFallback}";
        if (DraftsProposed > 0) s += $"; MTP acceptance {AcceptanceRate:P1} ({DraftsAccepted}/{DraftsProposed})";
        return s;
    }
}
