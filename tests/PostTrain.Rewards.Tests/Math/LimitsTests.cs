// The per-check budget: absurd sizes (towers of powers, huge factorials, deep nesting, huge inputs) are
// refused quickly with a "too complex" or "timeout" verdict instead of stalling or overflowing the stack.
using System.Diagnostics;
using PostTrain.Rewards.Math;

namespace PostTrain.Rewards.Tests.Math;

public sealed class LimitsTests
{
    // The clock must not decide these verdicts: with a 30 s budget a refusal that is not "timeout" came from the size
    // rules (no evaluation), whatever the machine's load. The elapsed time is only a hang guard.
    private static readonly MathCheckOptions Generous = MathCheckOptions.Default with { Timeout = TimeSpan.FromSeconds(30) };

    private static void AssertRefusedWithoutTheClock(MathVerdict verdict, long ms)
    {
        Assert.NotEqual("timeout", verdict.Reason);
        Assert.True(ms < 30_000, $"took {ms} ms");
    }

    private static (MathVerdict Verdict, long Ms) Timed(string gold, string prediction, MathCheckOptions? options = null)
    {
        options ??= Generous;
        WarmUp();
        MathVerifier.Verify(gold, prediction, options); // the same check once: the timing excludes first-call JIT
        var sw = Stopwatch.StartNew();
        var verdict = MathVerifier.Verify(gold, prediction, options);
        return (verdict, sw.ElapsedMilliseconds);
    }

    /// <summary>JIT-compiles every path once so the timings measure the checks, not the first-call compile.</summary>
    private static void WarmUp()
    {
        foreach (var (g, p) in new[] { ("1", "1"), (@"\sqrt{2}", "1.41"), ("10^{10^{10}}", "2"), ("x^2", "x x"),
                     ("(10^{10})!", "3!"), (@"\binom{5}{2}", "10"), ("((1))", "1"), ("(1,2]", "x > 1") })
            MathVerifier.Verify(g, p);
    }

    [Fact]
    public void Power_tower_is_too_complex_without_evaluation()
    {
        var (verdict, ms) = Timed("10^{10^{10^{10}}}", "10^{10^{10^{10}}}+1");
        AssertRefusedWithoutTheClock(verdict, ms);
        Assert.False(verdict.Correct);
        Assert.StartsWith("too complex", verdict.Reason);
    }

    [Fact]
    public void Power_tower_against_a_small_number_is_simply_wrong()
    {
        var (verdict, ms) = Timed("5", "10^{10^{10^{10}}}");
        AssertRefusedWithoutTheClock(verdict, ms);
        Assert.False(verdict.Correct);
        Assert.StartsWith("not equal", verdict.Reason);
    }

    [Fact]
    public void Identical_power_towers_are_equal_without_evaluation()
    {
        var (verdict, ms) = Timed("10^{10^{10^{10}}}", "10^{10^{10^{10}}}");
        AssertRefusedWithoutTheClock(verdict, ms);
        Assert.True(verdict.Correct);
    }

    [Theory]
    [InlineData("1000000!", "1000001!")]
    [InlineData("(10^{10^{10}})!", "5")]
    [InlineData("2^{2^{2^{2^{2^{2}}}}}", "2^{2^{2^{2^{2^{3}}}}}")]
    [InlineData("x^{10^{10^{10}}}", "x^{10^{10^{10}}+1}")]
    [InlineData(@"\binom{10^{12}}{10^{11}}", "7")]
    [InlineData("0", "0.5^{10^{10}}")]
    public void Huge_values_are_refused_quickly(string gold, string prediction)
    {
        var (verdict, ms) = Timed(gold, prediction);
        AssertRefusedWithoutTheClock(verdict, ms);
        Assert.False(verdict.Correct, verdict.Reason);
    }

    [Fact]
    public void Deep_nesting_is_too_complex_not_a_stack_overflow()
    {
        var deep = new string('(', 5000) + "1" + new string(')', 5000);
        var (verdict, ms) = Timed("1", deep);
        AssertRefusedWithoutTheClock(verdict, ms);
        Assert.False(verdict.Correct);
        Assert.StartsWith("too complex", verdict.Reason);
    }

    [Fact]
    public void Huge_input_is_too_complex()
    {
        var big = string.Join("+", Enumerable.Repeat("1", 50000));
        var (verdict, ms) = Timed("50000", big);
        AssertRefusedWithoutTheClock(verdict, ms);
        Assert.StartsWith("too complex", verdict.Reason);
    }

    [Fact]
    public void Long_but_reasonable_sum_is_evaluated_exactly()
    {
        var sum = string.Join("+", Enumerable.Repeat("1", 1500));
        Assert.True(MathVerifier.Verify("1500", sum).Correct);
        Assert.False(MathVerifier.Verify("1499", sum).Correct);
    }

    [Fact]
    public void Exhausted_budget_reports_timeout()
    {
        var none = MathCheckOptions.Default with { Timeout = TimeSpan.Zero };
        var verdict = MathVerifier.Verify(@"\tan^2 x + 1", @"\sec^2 x", none);
        Assert.False(verdict.Correct);
        Assert.Equal("timeout", verdict.Reason);
    }
}
