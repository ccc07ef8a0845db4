using PostTrain.Rewards.Builtins;

namespace PostTrain.Rewards.Tests.Builtins;

public sealed class RepetitionRewardTests
{
    [Fact]
    public void BigramPenalty()
    {
        // words a b a b a b -> bigrams ab ba ab ba ab: 2 unique of 5 -> -(1 - 2/5) = -0.6
        var r = new RepetitionReward(ngram: 2);
        Assert.Equal(-0.6, Sample.Score(r, "a b a b a b")!.Value, 12);
        Assert.Equal(-0.3, Sample.Score(new RepetitionReward(2, maxPenalty: -0.5), "a b a b a b")!.Value, 12);
        Assert.Equal(-0.3, Sample.Score(new RepetitionReward(2, maxPenalty: 0.5), "a b a b a b")!.Value, 12);
    }

    [Fact]
    public void LowerCasesAndSplitsOnWhitespace()
    {
        // unigrams "a", "a" after lower-casing: 1 unique of 2 -> -0.5
        Assert.Equal(-0.5, Sample.Score(new RepetitionReward(1), "A\n\ta")!.Value, 12);
        // trigrams: the cat sat / cat sat the / sat the cat / the cat sat -> 3 unique of 4 -> -0.25
        Assert.Equal(-0.25, Sample.Score(new RepetitionReward(3), "The cat sat the cat sat")!.Value, 12);
    }

    [Theory]
    [InlineData("")]
    [InlineData("one two")]
    [InlineData("the cat sat on the mat")]
    public void NoPenaltyWhenShortOrUnique(string completion) => Assert.Equal(0.0, Sample.Score(new RepetitionReward(3), completion));
}
