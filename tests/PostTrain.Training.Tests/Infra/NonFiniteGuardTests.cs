// The NaN/inf loss guard: skip, reset on a finite loss, stop after N in a row.
using PostTrain.Training.Infra;

namespace PostTrain.Training.Tests.Infra;

public sealed class NonFiniteGuardTests
{
    [Fact]
    public void Skips_non_finite_losses_and_resets_on_a_finite_one()
    {
        var g = new NonFiniteGuard(maxConsecutive: 3);
        Assert.Equal(LossVerdict.Continue, g.Check(1.5, 0));
        Assert.Equal(LossVerdict.Skip, g.Check(double.NaN, 1));
        Assert.Equal(LossVerdict.Skip, g.Check(double.PositiveInfinity, 2));
        Assert.Equal(2, g.Consecutive);
        Assert.Equal(LossVerdict.Continue, g.Check(0.9, 3));
        Assert.Equal(0, g.Consecutive);
        Assert.Equal(LossVerdict.Skip, g.Check(double.NegativeInfinity, 4));
        Assert.Equal(3, g.TotalSkipped);
    }

    [Fact]
    public void Stops_on_the_Nth_non_finite_loss_in_a_row()
    {
        var g = new NonFiniteGuard(maxConsecutive: 2);
        Assert.Equal(LossVerdict.Skip, g.Check(double.NaN, 10));
        var ex = Assert.Throws<TrainingStoppedException>(() => g.Check(double.NaN, 11));
        Assert.StartsWith("step 11: loss is NaN for 2 steps in a row (max_consecutive_nonfinite = 2)", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new NonFiniteGuard(0));
    }
}
