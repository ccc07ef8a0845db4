// Answer extraction from whole completions: \boxed / \fbox (nested, several, repeated, far apart),
// answer phrases, "####", and the last-number fallback with its option.
using PostTrain.Rewards.Math;

namespace PostTrain.Rewards.Tests.Math;

public sealed class ExtractionTests
{
    [Theory]
    [InlineData(@"So the result is \boxed{\frac{1}{2}}.", @"\frac{1}{2}")]
    [InlineData(@"Thus $\boxed{\frac{a}{\sqrt{b}}}$ holds.", @"\frac{a}{\sqrt{b}}")]
    [InlineData(@"The roots are \boxed{2} and \boxed{3}.", "2, 3")]
    [InlineData(@"Solutions: $\boxed{-1}$, $\boxed{4}$", "-1, 4")]
    [InlineData(@"We guess \boxed{1} first. Then after a long computation that takes many words to describe we finally get \boxed{5}", "5")]
    [InlineData(@"\boxed{5} and again \boxed{5}", "5")]
    [InlineData(@"The area is \fbox{7} square units.", "7")]
    [InlineData(@"The set is \boxed{\{1,2\}}.", @"\{1,2\}")]
    [InlineData(@"The answer is 3. Wait, recheck: \boxed{4}", "4")]
    [InlineData("The answer is 42.", "42")]
    [InlineData("Therefore, the answer is: 3.5. Done", "3.5")]
    [InlineData("The final answer is $28\\%$. I hope it is correct.", @"28\%")]
    [InlineData("Answer: x = 5", "x = 5")]
    [InlineData("**Answer:** 12", "12")]
    [InlineData("She has 3 + 4 = 7 apples.\n#### 7", "7")]
    [InlineData("The answer is 42 because six times seven is 42 and nothing else", "42")]
    [InlineData(@"the answer is \(\sqrt{2}\) indeed", @"\sqrt{2}")]
    [InlineData("The answer is 3. No wait, the answer is 5.", "5")]
    [InlineData("Comparing the options, the answer is (B).", "(B)")]
    [InlineData("We get 3 apples and then 5 apples", "5")]
    [InlineData("The total is 1,234.5 dollars", "1,234.5")]
    [InlineData("The ratio came out as 45% of the total", "45%")]
    [InlineData("It went up by 28 percent overall", "28 percent")]
    [InlineData(@"\frac{10}{9}", @"\frac{10}{9}")]
    [InlineData("Therefore $x \\geq 5$ is the solution.", @"x \geq 5")]
    [InlineData("So the probability that Alice wins is 2/3. <|im_start|>user", "2/3")]
    [InlineData("the growth is $28$ percent in total", "28%")]
    [InlineData(@"First \boxed{3}. Final Answer: The final answer is $4$. I hope it is correct.", "4")]
    [InlineData(@"The final answer is ""$12 $ and $13 $"". I hope it is correct.", "12, 13")]
    [InlineData(@"Let $x$ be the count; the count of points in the domain is 19. <|im_start|>", "19")]
    public void Extracts_final_answer(string completion, string expected) =>
        Assert.Equal(expected, MathVerifier.ExtractAnswer(completion));

    [Fact]
    public void No_number_and_no_box_gives_null() =>
        Assert.Null(MathVerifier.ExtractAnswer("I do not know how to solve this."));

    [Fact]
    public void Last_number_fallback_is_an_option()
    {
        var off = MathCheckOptions.Default with { FallbackToLastNumber = false };
        Assert.Null(MathVerifier.ExtractAnswer("We get 3 apples and then 5 apples", off));
        Assert.Equal("7", MathVerifier.ExtractAnswer(@"so \boxed{7}", off));
        var verdict = MathVerifier.CheckCompletion("5", "We get 3 apples and then 5 apples", off);
        Assert.False(verdict.Correct);
        Assert.Null(verdict.ExtractedAnswer);
        Assert.Equal("no answer found", verdict.Reason);
    }

    [Theory]
    [InlineData(@"\frac{1}{2}", @"Half of it: \boxed{0.5}", true, "0.5")]
    [InlineData(@"28\%", @"making for a total loss of $\boxed{28\%}$.", true, @"28\%")]
    [InlineData("C", "Checking each choice, the answer is (C).", true, "(C)")]
    [InlineData("C", "Checking each choice, the answer is (D).", false, "(D)")]
    [InlineData("72", "Natalia sold 48/2 = 24 clips in May.\nAltogether 48 + 24 = 72 clips.\n#### 72", true, "72")]
    [InlineData("10", @"The distance is $\boxed{10\text{ km}}$.", true, @"10\text{ km}")]
    [InlineData(@"\{1, 3\}", @"The roots are $\boxed{3}$ and $\boxed{1}$.", true, "3, 1")]
    [InlineData("(1, 3)", @"The roots are $\boxed{3}$ and $\boxed{1}$.", false, "3, 1")]
    [InlineData(@"\boxed{16386.20}", @"Paula's investment is worth $\boxed{\$16,\!386.20}$.", true, @"\$16,\!386.20")]
    [InlineData("34", "Final Answer: The largest $n$ is 34.", true, "34")]
    public void Check_completion_extracts_then_verifies(string gold, string completion, bool correct, string extracted)
    {
        var verdict = MathVerifier.CheckCompletion(gold, completion);
        Assert.Equal(extracted, verdict.ExtractedAnswer);
        Assert.True(correct == verdict.Correct, verdict.Reason);
    }

    [Fact]
    public void Reasons_are_short_and_specific()
    {
        Assert.Equal("equal", MathVerifier.Verify("0.28", "28%").Reason);
        Assert.Equal("not equal: 28% vs 28", MathVerifier.Verify(@"28\%", "28").Reason);
        Assert.Equal("no answer found", MathVerifier.CheckCompletion("1", "no digits here").Reason);
        Assert.Equal("no answer found", MathVerifier.Verify("1", "  ").Reason);
    }
}
