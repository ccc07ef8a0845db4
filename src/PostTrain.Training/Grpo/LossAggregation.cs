// How per-token losses become one number. The three published choices differ only in the normaliser:
//   grpo     (DeepSeekMath): mean over each sequence's tokens, then mean over sequences;
//   dapo     (DAPO):         sum over every token of the batch / number of tokens in the batch;
//   dr_grpo  (Dr. GRPO):     sum over every token / (sequences * max_completion_length), a constant.
// Normalisers count the WHOLE batch (every micro-batch of one optimizer step), so the micro-batch contributions
// add up to exactly the full-batch loss, whatever the micro-batch size. The fast path's captured step divides by the
// same normaliser held in a device scalar (Denominator), since it changes from batch to batch.
using PostTrain.Training.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public enum LossAggregation
{
    [RecipeKey("grpo")] SequenceMean,
    [RecipeKey("dapo")] TokenMean,
    [RecipeKey("dr_grpo")] ConstantNormalizer,
}

/// <summary>The whole optimizer batch's counts: sequences, unmasked completion tokens, and the max completion length.</summary>
public sealed record LossNormalizer(long Sequences, long Tokens, int MaxCompletionLength);

public static class LossAggregator
{
    /// <summary>perToken (n, C) and mask (n, C) (1 = counts) of one micro-batch -> its scalar share of the batch loss.</summary>
    public static Tensor Aggregate(Tensor perToken, Tensor mask, LossAggregation kind, LossNormalizer norm)
    {
        using var scope = NewDisposeScope();
        var masked = perToken * mask;                                                       // (n, C)
        Tensor result = kind switch
        {
            LossAggregation.SequenceMean =>
                (masked.sum(1) / mask.sum(1).clamp_min(1)).sum() / Math.Max(norm.Sequences, 1),
            LossAggregation.TokenMean => masked.sum() / Math.Max(norm.Tokens, 1),
            LossAggregation.ConstantNormalizer => masked.sum() / Math.Max(norm.Sequences * norm.MaxCompletionLength, 1),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The normaliser Aggregate divides by for <paramref name="kind"/> (at least 1).</summary>
    public static double Denominator(LossAggregation kind, LossNormalizer norm) => kind switch
    {
        LossAggregation.SequenceMean => Math.Max(norm.Sequences, 1),
        LossAggregation.TokenMean => Math.Max(norm.Tokens, 1),
        LossAggregation.ConstantNormalizer => Math.Max(norm.Sequences * norm.MaxCompletionLength, 1),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>As Aggregate, dividing by <paramref name="denominator"/> (a device scalar holding Denominator): the
    /// same value with no host number baked into a captured step.</summary>
    public static Tensor Aggregate(Tensor perToken, Tensor mask, LossAggregation kind, Tensor denominator)
    {
        using var scope = NewDisposeScope();
        var masked = perToken * mask;                                                       // (n, C)
        Tensor sum = kind switch
        {
            LossAggregation.SequenceMean => (masked.sum(1) / mask.sum(1).clamp_min(1)).sum(),
            LossAggregation.TokenMean or LossAggregation.ConstantNormalizer => masked.sum(),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        return (sum / denominator).MoveToOuterDisposeScope();
    }
}
