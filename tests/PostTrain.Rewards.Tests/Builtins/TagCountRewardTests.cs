using PostTrain.Rewards.Builtins;

namespace PostTrain.Rewards.Tests.Builtins;

public sealed class TagCountRewardTests
{
    [Theory]
    [InlineData("<think>\nx\n</think>\n<answer>\n4\n</answer>", 1.0)]
    [InlineData("<think>\nx\n</think>\n4", 0.5)]                      // <think>\n and \n</think>\n only
    [InlineData("<think>\n<think>\nx\n</think>\n<answer>\n4\n</answer>", 0.75)] // <think>\n twice
    [InlineData("<think>x</think><answer>4</answer>", 0.0)]            // no newlines around the tags
    [InlineData("x\n</answer>", 0.25)]
    public void QuarterPerTagOccurringOnce(string completion, double expected) =>
        Assert.Equal(expected, Sample.Score(new TagCountReward(), completion));

    [Fact]
    public void CustomTagsShareTheCredit()
    {
        var r = new TagCountReward(["<a>", "</a>", "<b>"]);
        Assert.Equal(2.0 / 3.0, Sample.Score(r, "<a>x</a>")!.Value, 12);
    }
}
