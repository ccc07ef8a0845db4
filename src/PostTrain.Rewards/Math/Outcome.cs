// Result of comparing two parts of an answer: equal, not equal, or undecidable in bounds (too complex).
namespace PostTrain.Rewards.Math;

internal enum Outcome { NotEqual, Equal, TooComplex }

internal static class OutcomeExtensions
{
    /// <summary>All parts must be equal: NotEqual wins over TooComplex.</summary>
    public static Outcome And(this Outcome a, Outcome b) =>
        a == Outcome.NotEqual || b == Outcome.NotEqual ? Outcome.NotEqual
        : a == Outcome.TooComplex || b == Outcome.TooComplex ? Outcome.TooComplex : Outcome.Equal;

    /// <summary>Any alternative may be equal: Equal wins over TooComplex.</summary>
    public static Outcome Or(this Outcome a, Outcome b) =>
        a == Outcome.Equal || b == Outcome.Equal ? Outcome.Equal
        : a == Outcome.TooComplex || b == Outcome.TooComplex ? Outcome.TooComplex : Outcome.NotEqual;
}
