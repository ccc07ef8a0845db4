// The gradient of the whole GRPO objective (clipped surrogate + beta * k3 KL, aggregated) with respect to the logits,
// from autograd, against central finite differences on a tiny float64 logits tensor. Some tokens sit outside the clip
// range (their surrogate gradient must vanish), some inside; both ratio levels and two aggregations are checked.
using PostTrain.Training.Grpo;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Grpo;

public sealed class LossGradientTests
{
    private const int N = 2, C = 3, V = 4;
    private static readonly long[] Targets = [0, 3, 1, 2, 2, 0];
    // log pi_old = log pi_theta(at start) + offset: offsets of +-0.6 put the ratio outside [0.8, 1.28], +-0.05 inside
    private static readonly double[] OldOffsets = [0.6, -0.05, 0.05, -0.6, 0.05, -0.05];
    private static readonly double[] RefOffsets = [0.3, -0.2, 0.1, 0.4, -0.1, 0.2];

    private static Tensor Loss(Tensor logits, Tensor oldLp, Tensor refLp, ImportanceLevel level, LossAggregation agg)
    {
        var lp = logits.log_softmax(-1).gather(2, tensor(Targets, [N, C, 1])).squeeze(2);    // (N, C)
        var mask = tensor(new double[] { 1, 1, 1, 1, 1, 0 }, [N, C], dtype: ScalarType.Float64);
        var adv = tensor(new[] { 0.7, -1.3 }, dtype: ScalarType.Float64);
        var s = PolicyLoss.Clipped(lp, oldLp, adv, mask, 0.2, 0.28, level);
        var perToken = s.PerToken + 0.05 * KlPenalty.K3(lp, refLp);
        return LossAggregator.Aggregate(perToken, mask, agg, new LossNormalizer(N, 5, C));
    }

    [Theory]
    [InlineData(ImportanceLevel.Token, LossAggregation.SequenceMean)]
    [InlineData(ImportanceLevel.Token, LossAggregation.TokenMean)]
    [InlineData(ImportanceLevel.Sequence, LossAggregation.SequenceMean)]
    public void Autograd_matches_finite_differences(ImportanceLevel level, LossAggregation agg)
    {
        using var scope = NewDisposeScope();
        var gen = new Random(7);
        var start = tensor(Enumerable.Range(0, N * C * V).Select(_ => gen.NextDouble() * 2 - 1).ToArray(), [N, C, V]);
        Tensor lp0;
        using (no_grad()) lp0 = start.log_softmax(-1).gather(2, tensor(Targets, [N, C, 1])).squeeze(2);
        var oldLp = lp0 + tensor(OldOffsets, [N, C]);
        var refLp = lp0 + tensor(RefOffsets, [N, C]);

        var x = start.clone().requires_grad_(true);
        Loss(x, oldLp, refLp, level, agg).backward();
        var analytic = x.grad!.reshape(-1).data<double>().ToArray();

        var flat = start.reshape(-1).data<double>().ToArray();
        const double h = 1e-6;
        double maxAbs = 0;
        for (int i = 0; i < flat.Length; i++)
        {
            double At(double delta)
            {
                var v = (double[])flat.Clone();
                v[i] += delta;
                using var _ = no_grad();
                return Loss(tensor(v, [N, C, V]), oldLp, refLp, level, agg).item<double>();
            }
            double numeric = (At(h) - At(-h)) / (2 * h);
            Assert.True(Math.Abs(numeric - analytic[i]) < 1e-7, $"logit {i}: autograd {analytic[i]}, finite difference {numeric}");
            maxAbs = Math.Max(maxAbs, Math.Abs(analytic[i]));
        }
        Assert.True(maxAbs > 1e-3, "the gradient is not trivially zero");
    }

    [Fact]
    public void Clipped_tokens_get_no_surrogate_gradient()
    {
        // ratio 1.65 with A > 0 is clipped above (1 + 0.28): its token contributes nothing without the KL term
        var logp = tensor(new[] { 0.5, 0.1 }, [1, 2], dtype: ScalarType.Float64).requires_grad_(true);
        var old = zeros(1, 2, dtype: ScalarType.Float64);
        var s = PolicyLoss.Clipped(logp, old, tensor(new[] { 1.0 }, dtype: ScalarType.Float64), ones(1, 2, dtype: ScalarType.Float64), 0.2, 0.28, ImportanceLevel.Token);
        s.PerToken.sum().backward();
        var g = logp.grad!.data<double>().ToArray();
        Assert.Equal(0, g[0]);
        Assert.Equal(-Math.Exp(0.1), g[1], 12);   // d(-r A)/d log pi = -r A
    }
}
