// Picks the next token of every row on the device, with no host sync. Greedy: argmax. Sampling: logits / T, filtered
// (LogitsProcessors), then the exponential race argmax(p_i / q_i) with q_i = -log(u_i) ~ Exp(1), which samples
// exactly from p (as vLLM does); u comes from CounterRng (seed, row key, step), so a row's draw does not depend on
// the rest of the batch. Log-probs: log softmax(logits / T) at the chosen token, before filtering (verl/TRL's
// pi_old); greedy: T = 1.
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

public static class Sampler
{
    /// <summary>logits (B, V) fp32 -> (tokens (B) int64, log-probs (B) fp32). rowKeys (B) int64 identify the rows'
    /// random streams (default 0..B-1); step is the index of the token being sampled.</summary>
    public static (Tensor Tokens, Tensor LogProbs) Sample(Tensor logits, SamplingParams p, Tensor? rowKeys = null, long step = 0) =>
        Sample(logits, p, rowKeys, step, deviceStep: null);

    /// <summary>As above with the step index read from a (1) int64 device tensor (a captured CUDA graph's decode step).</summary>
    public static (Tensor Tokens, Tensor LogProbs) Sample(Tensor logits, SamplingParams p, Tensor rowKeys, Tensor deviceStep) =>
        Sample(logits, p, rowKeys, 0, deviceStep);

    private static (Tensor Tokens, Tensor LogProbs) Sample(Tensor logits, SamplingParams p, Tensor? rowKeys, long step, Tensor? deviceStep)
    {
        using var scope = NewDisposeScope();
        Tensor tok, logProbs;
        if (p.IsGreedy)
        {
            tok = logits.argmax(-1);                                                  // (B)
            logProbs = logits.log_softmax(-1);
        }
        else
        {
            bool filter = (p.TopK > 0 && p.TopK < logits.shape[^1]) || p.TopP < 1 || p.MinP > 0;
            rowKeys ??= arange(logits.shape[0], dtype: ScalarType.Int64, device: logits.device);
            // CUDA without filters: one fused kernel (Kernels.DecodeKernels) instead of ~30 ops over (B, V) arrays.
            if (!filter && PostTrain.Core.Kernels.DecodeKernels.For(logits) is { } fused
                && PostTrain.Core.Kernels.DecodeKernels.SampleFits(logits, rowKeys, deviceStep))
            {
                var (ft, flp) = fused.SampleRace(logits, p.Temperature, p.Seed, rowKeys, deviceStep, step);
                return (ft.MoveToOuterDisposeScope(), flp.MoveToOuterDisposeScope());
            }
            (tok, logProbs) = Race(logits, p, rowKeys, step, deviceStep, filter);
        }
        var lp = logProbs.gather(1, tok.unsqueeze(1)).squeeze(1);                     // (B)
        return (tok.MoveToOuterDisposeScope(), lp.MoveToOuterDisposeScope());
    }

    /// <summary>The exponential race in plain ops: (tokens (B), log-probs (B, V) of logits / T before filtering).</summary>
    private static (Tensor Tokens, Tensor LogProbs) Race(Tensor logits, SamplingParams p, Tensor rowKeys, long step, Tensor? deviceStep, bool filter)
    {
        var scaled = p.Temperature == 1 ? logits : logits / p.Temperature;            // (B, V)
        var logProbs = scaled.log_softmax(-1);
        var probs = (filter ? LogitsProcessors.Apply(scaled, p) : scaled).softmax(-1);
        var u = deviceStep is null
            ? CounterRng.Uniform(p.Seed, rowKeys, step, logits.shape[1])
            : CounterRng.Uniform(p.Seed, rowKeys, deviceStep, logits.shape[1]);
        var q = u.log_().neg_();                                                       // (B, V) Exp(1), > 0
        return ((probs / q).argmax(-1), logProbs);                                    // (B)
    }

    /// <summary>Unfiltered temperature sampling in plain ops: tokens (B), their log-probs (B) (the fused kernel's reference).</summary>
    internal static (Tensor Tokens, Tensor LogProbs) RacePlain(Tensor logits, double temperature, long seed, Tensor rowKeys, Tensor? deviceStep, long step)
    {
        using var scope = NewDisposeScope();
        var (tok, logProbs) = Race(logits, new SamplingParams(Temperature: temperature, Seed: seed), rowKeys, step, deviceStep, filter: false);
        var lp = logProbs.gather(1, tok.unsqueeze(1)).squeeze(1);
        return (tok.MoveToOuterDisposeScope(), lp.MoveToOuterDisposeScope());
    }
}
