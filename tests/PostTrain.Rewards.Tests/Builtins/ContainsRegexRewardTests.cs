using PostTrain.Rewards.Builtins;

namespace PostTrain.Rewards.Tests.Builtins;

public sealed class ContainsRegexRewardTests
{
    private static readonly RewardInput Case = Sample.Of("<think>maybe 41</think> It is 42", "Q", ("answer", 42L));

    [Fact]
    public void ContainsColumnValueInScope()
    {
        Assert.Equal(1.0, Sample.Score(new ContainsReward(column: "answer", scope: "answer"), Case));
        Assert.Equal(0.0, Sample.Score(new ContainsReward(column: "answer", scope: "reasoning"), Case));
        Assert.Null(Sample.Score(new ContainsReward(column: "missing"), Case));
    }

    [Fact]
    public void ContainsFixedText()
    {
        Assert.Equal(0.0, Sample.Score(new ContainsReward(text: "IT IS"), Case));
        Assert.Equal(1.0, Sample.Score(new ContainsReward(text: "IT IS", ignoreCase: true), Case));
        Assert.Throws<RewardConfigException>(() => new ContainsReward(text: "a", column: "b"));
    }

    [Fact]
    public void RegexMatchesInScope()
    {
        Assert.Equal(1.0, Sample.Score(new RegexReward(@"\d+\s*$", scope: "answer"), Case));
        Assert.Equal(0.0, Sample.Score(new RegexReward(@"^\s*\d+\s*$", scope: "answer"), Case));
        Assert.Equal(1.0, Sample.Score(new RegexReward(@"maybe 41", scope: "reasoning"), Case));
        Assert.Contains("bad pattern", Assert.Throws<RewardConfigException>(() => new RegexReward("(")).Message);
    }
}
