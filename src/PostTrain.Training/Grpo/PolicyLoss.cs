// The clipped surrogate of PPO/GRPO, per token, as a loss (to minimise):
//   loss_t = -min(rho_t * A, clip(rho_t, 1 - eps_low, 1 + eps_high) * A)
// with rho = pi_theta / pi_old. eps_high > eps_low is DAPO's clip-higher. The ratio is per token (GRPO), or per
// sequence (GSPO): rho_i = exp(mean over the sequence's tokens of log pi_theta - log pi_old), shared by its tokens.
// Also returns which tokens the clip made inactive (TRL's clip_ratio/low and /high): rho < 1 - eps_low with A < 0,
// rho > 1 + eps_high with A > 0.
using PostTrain.Training.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public enum ImportanceLevel
{
    /// <summary>One ratio per token (GRPO, PPO).</summary>
    Token,
    /// <summary>One ratio per sequence: exp(mean token log-ratio) (GSPO).</summary>
    Sequence,
}

/// <param name="PerToken">(n, C) loss per token (not yet masked).</param>
/// <param name="Ratio">(n, C) the importance ratio each token used.</param>
/// <param name="LowClipped">(n, C) bool: clipped below with a negative advantage.</param>
/// <param name="HighClipped">(n, C) bool: clipped above with a positive advantage.</param>
public sealed record SurrogateLoss(Tensor PerToken, Tensor Ratio, Tensor LowClipped, Tensor HighClipped);

public static class PolicyLoss
{
    /// <summary>logProbs, oldLogProbs, mask (n, C); advantages (n).</summary>
    public static SurrogateLoss Clipped(Tensor logProbs, Tensor oldLogProbs, Tensor advantages, Tensor mask,
        double epsLow, double epsHigh, ImportanceLevel level)
    {
        using var scope = NewDisposeScope();
        var logRatio = logProbs - oldLogProbs;                                             // (n, C)
        if (level == ImportanceLevel.Sequence)
        {
            var seq = (logRatio * mask).sum(1, keepdim: true) / mask.sum(1, keepdim: true).clamp_min(1); // (n, 1)
            logRatio = seq.expand_as(logProbs);
        }
        var ratio = logRatio.exp();                                                        // (n, C)
        var a = advantages.unsqueeze(1);                                                   // (n, 1)
        var clipped = ratio.clamp(1 - epsLow, 1 + epsHigh);
        var perToken = -minimum(ratio * a, clipped * a);                                   // (n, C)
        var low = (ratio < 1 - epsLow) & (a < 0);
        var high = (ratio > 1 + epsHigh) & (a > 0);
        return new SurrogateLoss(perToken.MoveToOuterDisposeScope(), ratio.MoveToOuterDisposeScope(),
            low.MoveToOuterDisposeScope(), high.MoveToOuterDisposeScope());
    }
}
