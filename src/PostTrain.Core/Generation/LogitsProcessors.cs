// Filters applied to temperature-scaled logits before sampling (Hugging Face's warper semantics), each a pure
// function on (B, V) fp32 logits that returns new logits with -inf at removed tokens:
//   top-k: keep tokens >= the k-th largest logit (ties with it are kept);
//   top-p: sort descending, keep a token while the probability mass strictly before it is < p (so the token that
//          crosses p is kept, and the most likely token always is);
//   min-p: keep tokens with probability >= min_p * max probability.
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

public static class LogitsProcessors
{
    /// <summary>Temperature-scaled logits (B, V) -> filtered logits (B, V), applying top-k, top-p, min-p in that order.</summary>
    public static Tensor Apply(Tensor logits, SamplingParams p)
    {
        using var scope = NewDisposeScope();
        var x = logits;
        if (p.TopK > 0 && p.TopK < logits.shape[^1]) x = TopK(x, p.TopK);
        if (p.TopP < 1) x = TopP(x, p.TopP);
        if (p.MinP > 0) x = MinP(x, p.MinP);
        return (ReferenceEquals(x, logits) ? x.clone() : x).MoveToOuterDisposeScope();
    }

    public static Tensor TopK(Tensor logits, int k)
    {
        using var scope = NewDisposeScope();
        var kth = logits.topk(k, dim: -1).values.narrow(-1, k - 1, 1);               // (B, 1)
        return logits.masked_fill(logits < kth, double.NegativeInfinity).MoveToOuterDisposeScope();
    }

    public static Tensor TopP(Tensor logits, double p)
    {
        using var scope = NewDisposeScope();
        var (sorted, order) = logits.sort(-1, descending: true);                     // (B, V)
        var probs = sorted.softmax(-1);
        var before = probs.cumsum(-1) - probs;                                        // mass strictly before each token
        var removeSorted = before >= p;                                               // (B, V) in sorted order
        var remove = removeSorted.scatter(-1, order, removeSorted);                   // back to vocabulary order
        return logits.masked_fill(remove, double.NegativeInfinity).MoveToOuterDisposeScope();
    }

    public static Tensor MinP(Tensor logits, double minP)
    {
        using var scope = NewDisposeScope();
        var probs = logits.softmax(-1);                                               // (B, V)
        var threshold = probs.max(-1, keepdim: true).values * minP;                   // (B, 1)
        return logits.masked_fill(probs < threshold, double.NegativeInfinity).MoveToOuterDisposeScope();
    }
}
