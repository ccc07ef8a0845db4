// Picks the next token of every row on the device, with no host sync. Greedy: argmax. Sampling: logits / T, filtered
// (LogitsProcessors), then the exponential race argmax(p_i / q_i) with q_i ~ Exp(1) drawn from a seeded
// torch.Generator, which samples exactly from p (as vLLM does). Reproducible for the same seed, device, batch and
// prompts. Log-probs: log softmax(logits / T) at the chosen token, before filtering (verl/TRL's pi_old); greedy: T = 1.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

public static class Sampler
{
    /// <summary>logits (B, V) fp32 -> (tokens (B) int64, log-probs (B) fp32).</summary>
    public static (Tensor Tokens, Tensor LogProbs) Sample(Tensor logits, SamplingParams p, torch.Generator? generator)
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
            var scaled = p.Temperature == 1 ? logits : logits / p.Temperature;        // (B, V)
            logProbs = scaled.log_softmax(-1);
            bool filter = (p.TopK > 0 && p.TopK < logits.shape[^1]) || p.TopP < 1 || p.MinP > 0;
            var probs = (filter ? LogitsProcessors.Apply(scaled, p) : scaled).softmax(-1);
            var q = empty_like(probs).exponential_(1, generator).clamp_min_(1e-20);   // no 0/0 for removed tokens
            tok = (probs / q).argmax(-1);                                             // (B)
        }
        var lp = logProbs.gather(1, tok.unsqueeze(1)).squeeze(1);                     // (B)
        return (tok.MoveToOuterDisposeScope(), lp.MoveToOuterDisposeScope());
    }
}
