// Group-relative advantages (DeepSeekMath GRPO): every completion of a prompt gets A_i = (r_i - mean(group)) / (s + eps),
// used for all of its tokens. The scale s is the group's std (GRPO), the whole batch's std (as TRL's
// scale_rewards="batch"), or 1 with eps dropped (Dr. GRPO: no std division, so easy/hard prompts are not re-weighted).
// Std is the sample std (n - 1, as torch.std and TRL); a one-element batch has std 0. A group whose rewards are
// all equal gets advantage 0 exactly (no 0/0 when eps is 0, no rounding residue from its mean).
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Grpo;

public enum AdvantageScaling
{
    /// <summary>Divide by the group's std (GRPO).</summary>
    Group,
    /// <summary>Divide by the std of every reward in the batch.</summary>
    Batch,
    /// <summary>No division (Dr. GRPO).</summary>
    [RecipeKey("none")] None,
}

public static class Advantages
{
    /// <summary>rewards laid out group by group (prompt 0's G completions, then prompt 1's, ...) -> one advantage each.</summary>
    public static double[] Compute(IReadOnlyList<double> rewards, int groupSize, AdvantageScaling scaling, double eps = 1e-4)
    {
        if (groupSize < 1) throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "group size must be >= 1");
        if (rewards.Count % groupSize != 0)
            throw new ArgumentException($"{rewards.Count} rewards do not split into groups of {groupSize}", nameof(rewards));
        double batchStd = SampleStd(rewards, 0, rewards.Count);
        var result = new double[rewards.Count];
        for (int start = 0; start < rewards.Count; start += groupSize)
        {
            double mean = 0;
            for (int i = start; i < start + groupSize; i++) mean += rewards[i];
            mean /= groupSize;
            if (!DynamicSampling.IsInformative(Slice(rewards, start, groupSize))) continue;   // all equal: 0 (also with eps 0)
            double divisor = scaling switch
            {
                AdvantageScaling.Group => SampleStd(rewards, start, groupSize) + eps,
                AdvantageScaling.Batch => batchStd + eps,
                _ => 1.0,
            };
            for (int i = start; i < start + groupSize; i++) result[i] = (rewards[i] - mean) / divisor;
        }
        return result;
    }

    private static double[] Slice(IReadOnlyList<double> xs, int start, int count) =>
        Enumerable.Range(start, count).Select(i => xs[i]).ToArray();

    /// <summary>Sample standard deviation (n - 1) of xs[start .. start+count); 0 when count &lt; 2.</summary>
    public static double SampleStd(IReadOnlyList<double> xs, int start, int count)
    {
        if (count < 2) return 0;
        double mean = 0;
        for (int i = start; i < start + count; i++) mean += xs[i];
        mean /= count;
        double ss = 0;
        for (int i = start; i < start + count; i++) ss += (xs[i] - mean) * (xs[i] - mean);
        return Math.Sqrt(ss / (count - 1));
    }
}
