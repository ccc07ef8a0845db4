// Rollout correction: the sampler's log-probs (pi_rollout: the generation engine, bf16 kernels, CUDA graphs) can
// differ from the trainer's log-probs of the same tokens before the update (pi_old: the training forward). With a
// correction on, PPO's ratio is taken against pi_old (recomputed by the training forward) and each token's policy
// term is weighted by the importance ratio r = pi_old / pi_rollout:
//   tis (truncated importance sampling): w = min(r, cap)
//   mis (masked importance sampling):    w = 1 if 1/cap <= r <= cap, else 0 (the token, or sequence, is dropped)
// Level token: one r per token. Level sequence: one r per sequence, the geometric mean of its tokens' ratios
// exp(mean_t log r_t) (stable at any length), shared by its tokens. Weights carry no gradient.
// none keeps GRPO's usual form: the ratio against the sampler's log-probs, no weights.
using PostTrain.Training.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public enum RolloutCorrectionMode
{
    None,
    /// <summary>Truncated importance sampling: w = min(pi_old / pi_rollout, cap).</summary>
    Tis,
    /// <summary>Masked importance sampling: tokens (or sequences) whose ratio leaves [1/cap, cap] get weight 0.</summary>
    Mis,
}

public static class RolloutCorrection
{
    /// <summary>oldLogProbs (the trainer's, before the update), rolloutLogProbs, mask (n, C) -> weights (n, C), 0 on
    /// padding; all ones for None.</summary>
    public static Tensor Weights(Tensor oldLogProbs, Tensor rolloutLogProbs, Tensor mask, RolloutCorrectionMode mode,
        double cap, ImportanceLevel level)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        if (mode == RolloutCorrectionMode.None) return mask.clone().MoveToOuterDisposeScope();
        var logR = (oldLogProbs - rolloutLogProbs) * mask;                                  // (n, C)
        if (level == ImportanceLevel.Sequence)
            logR = (logR.sum(1, keepdim: true) / mask.sum(1, keepdim: true).clamp_min(1)).expand_as(mask);
        var r = logR.clamp_max(80).exp();                                                 // no inf for huge ratios
        var w = mode == RolloutCorrectionMode.Tis
            ? r.clamp_max(cap)
            : ((r >= 1 / cap) & (r <= cap)).to(mask.dtype);
        return (w * mask).MoveToOuterDisposeScope();
    }
}
