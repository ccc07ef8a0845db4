// Cooperative time and size limits of one check. Every loop in the parser, evaluators and comparers calls
// Tick(); past the deadline it throws MathTimeoutException. Sizes beyond fixed bounds (deep nesting, huge
// exponents or factorials) throw MathTooComplexException. No threads, nothing that can hang.
using System.Diagnostics;

namespace PostTrain.Rewards.Math;

internal sealed class MathTimeoutException() : Exception("timeout");

internal sealed class MathTooComplexException(string why) : Exception(why);

internal sealed class Budget
{
    public const int MaxDepth = 200;        // parser / evaluator nesting
    public const int MaxInputLength = 4000; // characters of one answer
    public const int MaxExactBits = 20000;  // size of an exact rational
    public const int MaxFactorial = 2000;   // n! computed exactly up to this n

    private readonly long _deadline;
    private int _ticks;

    public Budget(TimeSpan limit)
    {
        var ticks = limit <= TimeSpan.Zero ? 0 : (long)(limit.TotalSeconds * Stopwatch.Frequency);
        _deadline = Stopwatch.GetTimestamp() + ticks;
    }

    public static Budget Unlimited => new(TimeSpan.FromDays(1));

    public void Tick()
    {
        if ((++_ticks & 15) == 0 && Stopwatch.GetTimestamp() > _deadline) throw new MathTimeoutException();
    }

    public void CheckDepth(int depth)
    {
        if (depth > MaxDepth) throw new MathTooComplexException("nesting too deep");
        Tick();
    }
}
