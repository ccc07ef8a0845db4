// Group-relative advantages on hand-computed numbers (rewards [1,0,0,1 | 2,2,2,2], groups of 4).
using PostTrain.Training.Grpo;

namespace PostTrain.Training.Tests.Grpo;

public sealed class AdvantageTests
{
    private static readonly double[] Rewards = [1, 0, 0, 1, 2, 2, 2, 2];

    [Fact]
    public void Group_std_scaling_divides_by_the_groups_sample_std()
    {
        // group 1: mean 0.5, sample std sqrt(4 * 0.25 / 3) = 0.577350; group 2: std 0 -> all zero
        var a = Advantages.Compute(Rewards, 4, AdvantageScaling.Group, eps: 0);
        double[] expected = [0.866025, -0.866025, -0.866025, 0.866025, 0, 0, 0, 0];
        for (int i = 0; i < 8; i++) Assert.Equal(expected[i], a[i], 6);
    }

    [Fact]
    public void Eps_keeps_the_division_finite_and_slightly_shrinks_advantages()
    {
        var a = Advantages.Compute(Rewards, 4, AdvantageScaling.Group, eps: 0.1);
        Assert.Equal(0.5 / (0.577350269 + 0.1), a[0], 8);
        Assert.Equal(0, a[5]);
    }

    [Fact]
    public void Batch_std_scaling_uses_every_reward_of_the_batch()
    {
        // batch mean 1.25, squared deviations 0.0625 + 1.5625 + 1.5625 + 0.0625 + 4 * 0.5625 = 5.5; std sqrt(5.5 / 7) = 0.886405
        var a = Advantages.Compute(Rewards, 4, AdvantageScaling.Batch, eps: 0);
        Assert.Equal(0.564076, a[0], 6);
        Assert.Equal(-0.564076, a[1], 6);
        Assert.Equal(0, a[7], 12);
    }

    [Fact]
    public void No_scaling_is_reward_minus_group_mean()
    {
        var a = Advantages.Compute(Rewards, 4, AdvantageScaling.None, eps: 1e-4);
        Assert.Equal([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0], a);
    }

    [Fact]
    public void Rewards_that_do_not_split_into_groups_are_an_error()
    {
        var e = Assert.Throws<ArgumentException>(() => Advantages.Compute([1, 2, 3], 2, AdvantageScaling.Group));
        Assert.Contains("3 rewards do not split into groups of 2", e.Message);
    }
}
