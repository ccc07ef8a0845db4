using PostTrain.Rewards.Builtins;

namespace PostTrain.Rewards.Tests.Builtins;

public sealed class LanguageRewardTests
{
    // Words with letters in the reasoning: I, think, 这, 是, correct, ok (123 has no letter) -> 4 Latin, 2 Han.
    private const string Mixed = "<think>I think 这是 correct, 123 ok</think> Answer: 这";

    [Fact]
    public void EnglishShareOfReasoningWords() =>
        Assert.Equal(4.0 / 6.0, Sample.Score(new LanguageReward("en"), Mixed)!.Value, 12);

    [Fact]
    public void ChineseCountsEachHanCharacterAsAWord() =>
        Assert.Equal(2.0 / 6.0, Sample.Score(new LanguageReward("zh"), Mixed)!.Value, 12);

    [Fact]
    public void ScopesAndScripts()
    {
        Assert.Equal(1.0, Sample.Score(new LanguageReward("zh", scope: "answer"), "<think>x</think>这是")); // 这, 是
        Assert.Equal(0.25, Sample.Score(new LanguageReward("zh", scope: "completion"), "<think>hi</think>这")); // think, hi, think, 这
        Assert.Equal(0.5, Sample.Score(new LanguageReward("en"), "Привет world"));            // no tags: whole completion
        Assert.Equal(1.0, Sample.Score(new LanguageReward("en"), "<think>café don't naïve</think>"));
        Assert.Equal(1.0 / 3.0, Sample.Score(new LanguageReward("ru"), "<think>Привет big world</think>")!.Value, 12);
        Assert.Equal(1.0, Sample.Score(new LanguageReward("ja"), "<think>これは漢字</think>"));
    }

    [Fact]
    public void NoWordsWithLettersIsNotApplicable() =>
        Assert.Null(Sample.Score(new LanguageReward("en"), "<think>123 + 456 = 579</think>579"));

    [Fact]
    public void UnknownTargetIsAConfigError() =>
        Assert.Contains("did you mean 'han'", Assert.Throws<RewardConfigException>(() => new LanguageReward("hann")).Message);
}
