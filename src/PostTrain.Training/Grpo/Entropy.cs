// Entropy of the policy's next-token distribution at each completion token, H = -sum_v p_v log p_v, from logits
// (already divided by the sampling temperature). Logged as a metric (collapse to 0 = the policy stopped exploring).
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public static class Entropy
{
    /// <summary>logits (..., V) -> entropy (...) in nats.</summary>
    public static Tensor FromLogits(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var logp = logits.log_softmax(-1);
        return (-(logp.exp() * logp).sum(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>Mean of values (n, C) over the tokens where mask (n, C) is 1; 0 when none.</summary>
    public static Tensor MaskedMean(Tensor values, Tensor mask)
    {
        using var scope = NewDisposeScope();
        return ((values * mask).sum() / mask.sum().clamp_min(1)).MoveToOuterDisposeScope();
    }
}
