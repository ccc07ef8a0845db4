using PostTrain.Rewards.Builtins;

namespace PostTrain.Rewards.Tests;

/// <summary>The task rewards that wrap the checkers: math (MathVerifier), countdown (exact arithmetic), code (sandbox).</summary>
public sealed class TaskRewardTests
{
    static RewardInput In(string completion, params (string, object?)[] cols) =>
        new("q", completion, cols.ToDictionary(c => c.Item1, c => c.Item2));

    [Theory]
    [InlineData("So 3 + 4 = 7. The answer is \\boxed{7}.", "7", 1.0)]
    [InlineData("\\boxed{\\frac{1}{2}}", "0.5", 1.0)]
    [InlineData("I think \\boxed{8}", "7", 0.0)]
    [InlineData("no number here", "7", 0.0)]
    public void MathRewardScoresTheFinalAnswer(string completion, string gold, double expected)
    {
        var r = new MathReward().Score(In(completion, ("answer", gold)), default);
        Assert.Equal(expected, r.Score);
    }

    [Fact]
    public void MathRewardWithoutGoldIsNotApplicable() =>
        Assert.Null(new MathReward().Score(In("\\boxed{1}"), default).Score);

    [Theory]
    [InlineData("<answer>(3 + 5) * 2</answer>", 1.0)]      // 16 with 3,5,2 each once
    [InlineData("\\boxed{3 * 5 + 2 = 16}", 0.0)]           // = 17
    [InlineData("<answer>(3 + 5) * 2 * 1</answer>", 0.0)]  // extra literal
    [InlineData("<answer>8 * 2</answer>", 0.0)]            // wrong numbers
    [InlineData("Final:\n(5 + 3) * 2", 1.0)]               // last line
    public void CountdownChecksNumbersAndTarget(string completion, double expected)
    {
        var r = new CountdownReward().Score(In(completion, ("numbers", "[3, 5, 2]"), ("target", 16L)), default);
        Assert.Equal(expected, r.Score);
    }

    [Fact]
    public void CodeRewardRunsTheFencedProgramAgainstTheTests()
    {
        string tests = """{"entry":"add","cases":[{"args":[1,2],"expected":3},{"args":[5,5],"expected":10}]}""";
        var good = new CodeReward("javascript").Score(In("```js\nfunction add(a, b) { return a + b; }\n```", ("tests", tests)), default);
        Assert.Equal(1.0, good.Score);
        var half = new CodeReward("javascript").Score(In("```js\nfunction add(a, b) { return a == 1 ? 3 : 0; }\n```", ("tests", tests)), default);
        Assert.Equal(0.5, half.Score);
        var none = new CodeReward("javascript").Score(In("I cannot write code", ("tests", tests)), default);
        Assert.Equal(0.0, none.Score);
    }
}
