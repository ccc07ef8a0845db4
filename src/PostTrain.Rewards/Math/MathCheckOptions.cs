// Options of the math answer checker. Defaults follow Hugging Face math-verify where it has an opinion
// (X% means X/100, a gold interval is not matched by a restated inequality), and are documented per field.
namespace PostTrain.Rewards.Math;

public sealed record MathCheckOptions
{
    /// <summary>Relative tolerance used when either side is inexact (written with a decimal point, or
    /// irrational and compared with a decimal). Exact values (integers, fractions) are compared exactly.</summary>
    public double RelativeTolerance { get; init; } = 1e-6;

    /// <summary>Absolute floor of the tolerance for inexact comparisons: 5e-7 is half a unit in the 6th decimal
    /// place, like math-verify's float_rounding=6 (so 1/70 matches 0.014286).</summary>
    public double AbsoluteTolerance { get; init; } = 5e-7;

    /// <summary>When no \boxed{} and no answer phrase is found, use the last number in the completion.</summary>
    public bool FallbackToLastNumber { get; init; } = true;

    /// <summary>When no \boxed{} and no answer phrase is found, use the last $..$ / \(..\) / \[..\] math span
    /// that parses (math-verify does this); the later of it and the last number wins.</summary>
    public bool FallbackToLastLatex { get; init; } = true;

    /// <summary>Budget of one check (extraction, parsing and comparison). Enforced cooperatively, no threads.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>true (math-verify): "28%" means 28/100, so it equals 0.28 and not 28.
    /// false: the percent sign is dropped like a unit, so "28%" equals 28 and not 0.28.</summary>
    public bool PercentEqualsFraction { get; init; } = true;

    /// <summary>false (math-verify default): a gold set/interval is not matched by a prediction that restates it
    /// as an inequality (gold "(2, \infty)" vs "x > 2" is wrong); a gold inequality is matched by the interval.
    /// true: both directions are accepted.</summary>
    public bool AllowSetRelationComparison { get; init; }

    /// <summary>Seed of the random points at which expressions with variables are compared.</summary>
    public int Seed { get; init; } = 12345;

    public static MathCheckOptions Default { get; } = new();
}
