using PostTrain.Rewards.Builtins;

namespace PostTrain.Rewards.Tests.Builtins;

public sealed class FormatRewardTests
{
    private readonly FormatReward _r1 = new();

    [Theory]
    [InlineData("<think>\nadd 2 and 2\n</think>\nThe answer is 4.", 1.0)]
    [InlineData("  <think>r</think>4", 1.0)]
    [InlineData("<think></think>4", 0.0)]
    [InlineData("<think> \n </think>4", 0.0)]
    [InlineData("<think>r</think>   \n", 0.0)]
    [InlineData("The answer is 4.", 0.0)]
    [InlineData("Sure. <think>r</think>4", 0.0)]
    [InlineData("<think>a</think><think>b</think>4", 0.0)]
    [InlineData("<think>a</think>4</think>", 0.0)]
    [InlineData("<think>never closed", 0.0)]
    public void ScoresR1Format(string completion, double expected) => Assert.Equal(expected, Sample.Score(_r1, completion));

    [Fact]
    public void ReasonNamesTheFailedRule()
    {
        Assert.Equal("empty reasoning", _r1.Score(Sample.Of("<think></think>4"), default).Reason);
        Assert.Equal("<think> occurs 2 times", _r1.Score(Sample.Of("<think>a</think><think>b</think>4"), default).Reason);
        Assert.Equal("no answer after </think>", _r1.Score(Sample.Of("<think>r</think>"), default).Reason);
    }

    [Fact]
    public void PromptThatOpensThinkCountsAsTheOpenTag()
    {
        Assert.Equal(1.0, Sample.Score(_r1, "2 + 2 = 4\n</think>\n4", prompt: "User: 2+2?\nAssistant: <think>\n"));
        Assert.Equal(0.0, Sample.Score(_r1, "2 + 2 = 4\n</think>\n4", prompt: "User: 2+2?"));
    }

    [Fact]
    public void CustomTagsAndAnswerTags()
    {
        var r = new FormatReward("<reasoning>", "</reasoning>", "<answer>", "</answer>");
        Assert.Equal(1.0, Sample.Score(r, "<reasoning>x</reasoning>\n<answer>4</answer>\n"));
        Assert.Equal(0.0, Sample.Score(r, "<reasoning>x</reasoning>\n4"));
        Assert.Equal(0.0, Sample.Score(r, "<reasoning>x</reasoning>\n<answer> </answer>"));
        Assert.Equal(0.0, Sample.Score(r, "<think>x</think>\n<answer>4</answer>"));
    }

    [Fact]
    public void OnlyOneAnswerTagIsAConfigError() =>
        Assert.Throws<RewardConfigException>(() => new FormatReward(answerOpen: "<answer>"));
}
