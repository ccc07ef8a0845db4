// The options change the documented policies: percent as fraction or unit, set/relation direction,
// tolerance, and deterministic random points.
using PostTrain.Rewards.Math;

namespace PostTrain.Rewards.Tests.Math;

public sealed class OptionsTests
{
    [Fact]
    public void Percent_as_unit_when_not_a_fraction()
    {
        var unit = MathCheckOptions.Default with { PercentEqualsFraction = false };
        Assert.True(MathVerifier.Verify(@"28\%", "28", unit).Correct);
        Assert.True(MathVerifier.Verify("28", "28 percent", unit).Correct);
        Assert.False(MathVerifier.Verify(@"28\%", "0.28", unit).Correct);
        // default (math-verify): 28% is 0.28
        Assert.True(MathVerifier.Verify(@"28\%", "0.28").Correct);
        Assert.False(MathVerifier.Verify(@"28\%", "28").Correct);
    }

    [Fact]
    public void Set_relation_comparison_in_both_directions_when_allowed()
    {
        var both = MathCheckOptions.Default with { AllowSetRelationComparison = true };
        Assert.False(MathVerifier.Verify(@"(2, \infty)", "x > 2").Correct);
        Assert.True(MathVerifier.Verify(@"(2, \infty)", "x > 2", both).Correct);
        Assert.True(MathVerifier.Verify("[1, 3)", @"1 \le x < 3", both).Correct);
        Assert.False(MathVerifier.Verify("[1, 3)", "1 < x < 3", both).Correct);
    }

    [Fact]
    public void Relative_tolerance_applies_to_written_decimals()
    {
        var loose = MathCheckOptions.Default with { RelativeTolerance = 0.01 };
        Assert.False(MathVerifier.Verify("100", "100.5").Correct);
        Assert.True(MathVerifier.Verify("100", "100.5", loose).Correct);
        Assert.False(MathVerifier.Verify("100", "102.5", loose).Correct);
        // exact values never use the tolerance
        Assert.False(MathVerifier.Verify("100", "201/2", loose).Correct);
    }

    [Fact]
    public void Random_points_are_seeded()
    {
        var a = MathCheckOptions.Default with { Seed = 1 };
        var b = MathCheckOptions.Default with { Seed = 2 };
        foreach (var o in new[] { a, b, a })
        {
            Assert.True(MathVerifier.Verify("(x+y)^2", "x^2+2xy+y^2", o).Correct);
            Assert.False(MathVerifier.Verify("(x+y)^2", "x^2+y^2", o).Correct);
        }
    }
}
