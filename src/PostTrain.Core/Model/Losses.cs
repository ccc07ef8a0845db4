// Training losses of the core model. Labels are aligned with the inputs: labels[b, t] is the target of position t
// (the token at t+1 when it is trained on, -100 otherwise). Sums and counts are returned separately so a trainer can
// take the mean over the target tokens of the whole global batch across gradient-accumulation micro-batches.
//   main:  cross-entropy of logits (B, T, V) against labels;
//   MTP:   depth k predicts token t+k+1 = labels[t+k] from position t, only where t and t+k lie in one example;
//          L_MTP = lambda / D * sum_k CE_k (DeepSeek-V3);
//   MoE:   the sequence-wise balance loss each MoE layer computed in its forward (alpha set on the layers).
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed record LossParts(Tensor MainSum, long MainCount, IReadOnlyList<(Tensor Sum, long Count)> Mtp, Tensor? Balance);

public static class Losses
{
    public const long Ignore = -100;

    /// <summary>Sum of token cross-entropies (fp32) and the number of target tokens.</summary>
    public static (Tensor Sum, long Count) CrossEntropySum(Tensor logits /*(B,T,V)*/, Tensor labels /*(B,T)*/)
    {
        using var scope = NewDisposeScope();
        var flat = logits.reshape(-1, logits.shape[^1]).to(ScalarType.Float32);
        var lab = labels.reshape(-1);
        long count = (lab != Ignore).sum().item<long>();
        var sum = nn.functional.cross_entropy(flat, lab, ignore_index: Ignore, reduction: nn.Reduction.Sum);
        return (sum.MoveToOuterDisposeScope(), count);
    }

    /// <summary>Targets of MTP depth k: (B, T-k), labels[t+k] where positions t..t+k share a segment, else -100.</summary>
    public static Tensor MtpLabels(Tensor labels /*(B,T)*/, int k, Tensor? segmentIds /*(B,T)*/)
    {
        using var scope = NewDisposeScope();
        long T = labels.shape[1];
        var target = labels.narrow(1, k, T - k).clone();
        if (segmentIds is not null)
        {
            var same = segmentIds.narrow(1, 0, T - k) == segmentIds.narrow(1, k, T - k);
            target = target.masked_fill(same.logical_not(), Ignore);
        }
        return target.MoveToOuterDisposeScope();
    }

    /// <summary>All loss parts of one forward (computeMtp must have been on for MTP parts).</summary>
    public static LossParts Compute(DeepSeekForCausalLM model, ModelOutput output, Tensor labels, Tensor? segmentIds)
    {
        var (mainSum, mainCount) = CrossEntropySum(output.Logits, labels);
        var mtp = new List<(Tensor, long)>();
        for (int k = 1; k <= output.MtpLogits.Count; k++)
            mtp.Add(CrossEntropySum(output.MtpLogits[k - 1], MtpLabels(labels, k, segmentIds)));
        Tensor? balance = null;
        foreach (var moe in model.MoeLayers())
            if (moe.LastBalanceLoss is { } l) balance = balance is null ? l : balance + l;
        return new LossParts(mainSum, mainCount, mtp, balance);
    }

    /// <summary>Combines parts into the scalar to backpropagate: main and each MTP depth are means over their own
    /// target counts (given for the whole global batch), MTP weighted lambda / D, plus the balance loss.</summary>
    public static Tensor Total(LossParts p, long globalMainCount, IReadOnlyList<long>? globalMtpCounts, double mtpLambda)
    {
        var total = p.MainSum / Math.Max(1, globalMainCount);
        int d = p.Mtp.Count;
        for (int k = 0; k < d && mtpLambda > 0; k++)
        {
            long n = globalMtpCounts?[k] ?? p.Mtp[k].Count;
            total = total + p.Mtp[k].Sum * (mtpLambda / d / Math.Max(1, n));
        }
        if (p.Balance is not null) total = total + p.Balance;
        return total;
    }
}
