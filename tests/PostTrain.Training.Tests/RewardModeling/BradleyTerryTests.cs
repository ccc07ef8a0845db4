// The Bradley-Terry loss, its margin and centering terms, its gradient and its metrics against numbers worked out by
// hand (softplus(-z) = -log sigmoid(z); d/dr_c = (-(1 - sigmoid(z)) + 2 coef (r_c + r_r)) / N, d/dr_r likewise with +).
using PostTrain.Training.RewardModeling;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.RewardModeling;

public sealed class BradleyTerryTests
{
    static readonly double[] Chosen = [1.0, 0.5, -0.2], Rejected = [0.0, 1.0, -0.2], Margin = [0.5, 0.0, 1.0];

    static Tensor T(double[] x, bool grad = false) => tensor(x.Select(v => (float)v).ToArray()).requires_grad_(grad);

    [Fact]
    public void PlainLossIsTheMeanOfMinusLogSigmoidOfTheDifference()
    {
        // d = [1, -0.5, 0]: (0.3132617 + 0.9740770 + 0.6931472) / 3
        using var loss = BradleyTerry.Loss(T(Chosen), T(Rejected), null, 0, 3);
        Assert.Equal(0.6601619507527583, loss.item<float>(), 1e-6);
        var m = BradleyTerry.Metrics(Chosen, Rejected, null, 0);
        Assert.Equal(0.6601619507527583, m.Loss, 1e-12);
        Assert.Equal(1.0 / 3, m.Accuracy, 1e-12);          // only pair 0 has r_c > r_r (pair 2 is a tie: wrong)
        Assert.Equal((1.0 - 0.5 + 0.0) / 3, m.Margin, 1e-12);
        Assert.Equal((1.0 + 0.5 - 0.2 + 0.0 + 1.0 - 0.2) / 6, m.RewardMean, 1e-12);
        Assert.Equal(3, m.Pairs);
    }

    [Fact]
    public void MarginAndCenteringAddTheirTerms()
    {
        // z = d - m = [0.5, -0.5, -1]: BT part 0.9204718852928121; centering 0.1 * mean([1, 2.25, 0.16]) = 0.1136667
        const double expected = 0.9204718852928121 + 0.11366666666666668;
        using var loss = BradleyTerry.Loss(T(Chosen), T(Rejected), T(Margin), 0.1, 3);
        Assert.Equal(expected, loss.item<float>(), 1e-6);
        var m = BradleyTerry.Metrics(Chosen, Rejected, Margin, 0.1);
        Assert.Equal(expected, m.Loss, 1e-12);
        Assert.Equal(1.0 / 3, m.Accuracy, 1e-12);          // accuracy and margin ignore the target margin
    }

    [Fact]
    public void GradientMatchesTheHandDerivative()
    {
        var c = T(Chosen, grad: true);
        var r = T(Rejected, grad: true);
        BradleyTerry.Loss(c, r, T(Margin), 0.1, 3).backward();
        double[] dc = [-0.05918022293271513, -0.10748644373395151, -0.27035285954333493];
        double[] dr = [0.1925135562660485, 0.30748644373395156, 0.21701952621000165];
        var gc = c.grad!.data<float>().ToArray();
        var gr = r.grad!.data<float>().ToArray();
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(dc[i], gc[i], 1e-6);
            Assert.Equal(dr[i], gr[i], 1e-6);
        }
    }

    [Fact]
    public void MicroBatchesNormalisedByTheGlobalPairCountSumToTheWholeBatchLoss()
    {
        using var whole = BradleyTerry.Loss(T(Chosen), T(Rejected), T(Margin), 0.1, 3);
        using var a = BradleyTerry.Loss(T(Chosen[..1]), T(Rejected[..1]), T(Margin[..1]), 0.1, 3);
        using var b = BradleyTerry.Loss(T(Chosen[1..]), T(Rejected[1..]), T(Margin[1..]), 0.1, 3);
        Assert.Equal(whole.item<float>(), a.item<float>() + b.item<float>(), 1e-6);
    }

    [Fact]
    public void LargeDifferencesStayFinite()
    {
        var m = BradleyTerry.Metrics([1000.0, -1000.0], [-1000.0, 1000.0], null, 0);
        Assert.Equal(2000.0 / 2, m.Loss, 1e-9);   // softplus(-2000) ~ 0, softplus(2000) = 2000
        using var loss = BradleyTerry.Loss(T([1000.0, -1000.0]), T([-1000.0, 1000.0]), null, 0, 2);
        Assert.Equal(1000.0, loss.item<float>(), 1e-3);
    }
}
