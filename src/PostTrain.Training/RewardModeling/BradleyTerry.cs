// The reward model's loss on preference pairs (Bradley-Terry, as in InstructGPT / TRL's RewardTrainer):
//   loss = mean_i [ -log sigmoid(r_c,i - r_r,i - m_i) ] + coef * mean_i [ (r_c,i + r_r,i)^2 ]
// with an optional per-pair margin m (Llama 2) and TRL's center_rewards_coefficient term. Means are over the pairs of
// the global batch: the trainer passes the global pair count so gradient accumulation gives the same gradient as one
// big batch. Metrics: accuracy (r_c > r_r; a tie counts as wrong), mean margin r_c - r_r, loss.
using static TorchSharp.torch;

namespace PostTrain.Training.RewardModeling;

public sealed record PreferenceMetrics(double Loss, double Accuracy, double Margin, double RewardMean, int Pairs);

public static class BradleyTerry
{
    /// <summary>chosen, rejected, margin: (P,) fp32. Sum over the P pairs divided by <paramref name="globalPairs"/>.</summary>
    public static Tensor Loss(Tensor chosen, Tensor rejected, Tensor? margin, double centerCoefficient, long globalPairs)
    {
        using var scope = NewDisposeScope();
        var diff = chosen - rejected;
        if (margin is not null) diff = diff - margin;
        var loss = -nn.functional.logsigmoid(diff).sum();
        if (centerCoefficient != 0) loss = loss + centerCoefficient * (chosen + rejected).pow(2).sum();
        return (loss / Math.Max(1, globalPairs)).MoveToOuterDisposeScope();
    }

    /// <summary>The same loss and the metrics, on the host, from scores already read back.</summary>
    public static PreferenceMetrics Metrics(IReadOnlyList<double> chosen, IReadOnlyList<double> rejected,
        IReadOnlyList<double>? margin, double centerCoefficient)
    {
        int n = chosen.Count;
        if (rejected.Count != n || (margin is not null && margin.Count != n))
            throw new ArgumentException($"{n} chosen, {rejected.Count} rejected, {margin?.Count} margins");
        double loss = 0, correct = 0, marginSum = 0, rewardSum = 0;
        for (int i = 0; i < n; i++)
        {
            double d = chosen[i] - rejected[i];
            double z = d - (margin?[i] ?? 0);
            loss += Softplus(-z) + centerCoefficient * Math.Pow(chosen[i] + rejected[i], 2);
            if (d > 0) correct++;
            marginSum += d;
            rewardSum += chosen[i] + rejected[i];
        }
        int m = Math.Max(1, n);
        return new PreferenceMetrics(loss / m, correct / m, marginSum / m, rewardSum / (2.0 * m), n);
    }

    // -log sigmoid(z) = softplus(-z) = log(1 + e^-z), computed without overflow
    private static double Softplus(double x) => x > 0 ? x + Math.Log(1 + Math.Exp(-x)) : Math.Log(1 + Math.Exp(x));
}
