// KL divergence to the frozen reference policy with Schulman's k3 estimator, per token:
//   KL_t = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1 = exp(d) - d - 1,  d = log pi_ref - log pi_theta.
// Unbiased for KL(pi_theta || pi_ref) under samples of pi_theta and never negative. The loss adds beta * KL_t to each
// token before aggregation (DeepSeekMath); beta = 0 needs no reference model at all.
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public static class KlPenalty
{
    /// <summary>logProbs, refLogProbs (n, C) -> k3 per token (n, C).</summary>
    public static Tensor K3(Tensor logProbs, Tensor refLogProbs)
    {
        using var scope = NewDisposeScope();
        var d = refLogProbs - logProbs;
        return (d.exp() - d - 1).MoveToOuterDisposeScope();
    }
}
