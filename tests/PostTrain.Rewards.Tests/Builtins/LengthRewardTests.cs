using PostTrain.Rewards.Builtins;

namespace PostTrain.Rewards.Tests.Builtins;

public sealed class LengthRewardTests
{
    // L_max = 100, L_cache = 20: 0 up to 80, then (80 - L) / 20, -1 past 100.
    private readonly LengthReward _chars = new(maxLength: 100, cacheLength: 20, unit: "chars");

    [Theory]
    [InlineData(50, 0.0)]
    [InlineData(80, 0.0)]
    [InlineData(85, -0.25)]
    [InlineData(90, -0.5)]
    [InlineData(100, -1.0)]
    [InlineData(101, -1.0)]
    [InlineData(5000, -1.0)]
    public void DapoOverlongShaping(int length, double expected) =>
        Assert.Equal(expected, Sample.Score(_chars, new string('x', length))!.Value, 12);

    [Fact]
    public void AutoUsesTokenCountColumnWhenPresent()
    {
        var auto = new LengthReward(100, 20);
        Assert.Equal(-0.25, Sample.Score(auto, Sample.Of("short", "Q", ("completion_tokens", 85L))));
        Assert.Equal(-0.5, Sample.Score(auto, Sample.Of("short", "Q", ("completion_tokens", Enumerable.Range(0, 90).Cast<object?>().ToList()))));
        Assert.Equal(-0.5, Sample.Score(auto, Sample.Of(new string('x', 90))));
        var result = auto.Score(Sample.Of("short", "Q", ("completion_tokens", "90")), default);
        Assert.Equal(("90 tokens", 90.0), (result.Reason, result.Metrics!["length"]));
    }

    [Fact]
    public void UnitsCharsAndTokens()
    {
        Assert.Equal(0.0, Sample.Score(_chars, Sample.Of("short", "Q", ("completion_tokens", 95L))));
        var tokens = new LengthReward(100, 20, "tokens");
        Assert.Null(Sample.Score(tokens, Sample.Of(new string('x', 95))));
        Assert.Equal(-0.75, Sample.Score(tokens, Sample.Of("short", "Q", ("completion_tokens", 95))));
    }

    [Fact]
    public void CacheLongerThanMaxIsAConfigError() => Assert.Throws<RewardConfigException>(() => new LengthReward(10, 20));
}
