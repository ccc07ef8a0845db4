// How far the sampler's log-probs (pi_rollout) are from the trainer's log-probs of the same completion tokens before
// the update (pi_old), over the completion tokens (mask): mean and max of |log pi_old - log pi_rollout|, Schulman's k3
// estimate of KL(pi_rollout || pi_old) (r - 1 - log r with r = pi_old / pi_rollout, sampled from pi_rollout: unbiased,
// >= 0), and the fraction of tokens with |delta| > 0.1. Logged under mismatch/ every GRPO step.
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public sealed record MismatchStats(double AbsMean, double AbsMax, double K3, double FracOver01, long Tokens)
{
    /// <summary>Sums over tokens (abs delta, k3, count over 0.1), the max and the token count, to combine micro-batches.</summary>
    public static Tensor Partial(Tensor oldLogProbs, Tensor rolloutLogProbs, Tensor mask)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var d = (oldLogProbs - rolloutLogProbs) * mask;                                   // (n, C)
        var abs = d.abs();
        var k3 = (d.exp() - 1 - d) * mask;
        return stack([abs.sum(), abs.max(), k3.sum(), ((abs > 0.1).to(mask.dtype) * mask).sum(), mask.sum()])
            .to(ScalarType.Float64).MoveToOuterDisposeScope();                          // (5)
    }

    /// <summary>Combines Partial results: sums add, the max is the max.</summary>
    public static MismatchStats Combine(IEnumerable<double[]> partials)
    {
        double abs = 0, max = 0, k3 = 0, over = 0, n = 0;
        foreach (var p in partials) { abs += p[0]; max = Math.Max(max, p[1]); k3 += p[2]; over += p[3]; n += p[4]; }
        double d = Math.Max(n, 1);
        return new MismatchStats(abs / d, max, k3 / d, over / d, (long)n);
    }

    public IEnumerable<(string, double)> ToMetrics() =>
    [
        ("mismatch/logprob_abs_mean", AbsMean), ("mismatch/logprob_abs_max", AbsMax),
        ("mismatch/k3_kl", K3), ("mismatch/frac_abs_over_0.1", FracOver01),
    ];
}
