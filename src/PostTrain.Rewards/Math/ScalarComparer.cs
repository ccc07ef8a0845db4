// Equivalence of two scalar expressions. Constants: exact rational (complex) comparison first; if either side
// was written with a decimal point, or is irrational, a numeric comparison with the options' tolerance
// (tight 1e-9 relative when no decimal was written, so 355/113 is not pi). Expressions with variables:
// evaluated at seeded random points (same values for the same names on both sides). Proportionality of two
// expressions (for equations and inequalities) uses the same points.
using System.Numerics;

namespace PostTrain.Rewards.Math;

internal sealed class ScalarComparer(MathCheckOptions options, Budget budget)
{
    private const double TightRelative = 1e-9;
    private const double TightAbsolute = 1e-12;
    private const int Points = 6;

    public Outcome Equal(Node a, Node b)
    {
        budget.Tick();
        if (a.Key() == b.Key()) return Outcome.Equal;
        var inexact = HasDecimal(a) || HasDecimal(b);
        var vars = Variables(a).Union(Variables(b)).Order(StringComparer.Ordinal).ToArray();
        if (vars.Length == 0)
        {
            if (ExactEvaluator.TryEvaluate(a, budget) is { } ea && ExactEvaluator.TryEvaluate(b, budget) is { } eb)
            {
                if (ea == eb) return Outcome.Equal;
                if (!inexact) return Outcome.NotEqual;
                return Close(ea.ToComplex(), eb.ToComplex(), inexact) ? Outcome.Equal : Outcome.NotEqual;
            }
            var va = NumericEvaluator.Evaluate(a, Empty, budget);
            var vb = NumericEvaluator.Evaluate(b, Empty, budget);
            return CompareValues(va, vb, HasInfinity(a) || HasInfinity(b), (x, y) => Close(x, y, inexact));
        }
        var valid = 0;
        foreach (var point in SamplePoints(vars))
        {
            var va = NumericEvaluator.Evaluate(a, point, budget);
            var vb = NumericEvaluator.Evaluate(b, point, budget);
            if (!Finite(va) || !Finite(vb)) continue;
            if (!Close(va, vb, inexact)) return Outcome.NotEqual;
            if (++valid == Points) return Outcome.Equal;
        }
        return Outcome.TooComplex;
    }

    /// <summary>a = k*b for a constant k != 0 (positive when <paramref name="positive"/>).</summary>
    public Outcome Proportional(Node a, Node b, bool positive)
    {
        var inexact = HasDecimal(a) || HasDecimal(b);
        var vars = Variables(a).Union(Variables(b)).Order(StringComparer.Ordinal).ToArray();
        if (vars.Length == 0) return Equal(a, b);
        Complex? ratio = null;
        var valid = 0;
        foreach (var point in SamplePoints(vars))
        {
            var va = NumericEvaluator.Evaluate(a, point, budget);
            var vb = NumericEvaluator.Evaluate(b, point, budget);
            if (!Finite(va) || !Finite(vb) || Complex.Abs(vb) < 1e-9) continue;
            var r = va / vb;
            if (ratio is null)
            {
                if (Complex.Abs(r) < 1e-12) return Outcome.NotEqual;
                if (positive && (System.Math.Abs(r.Imaginary) > 1e-9 || r.Real <= 0)) return Outcome.NotEqual;
                ratio = r;
            }
            else if (!Close(r, ratio.Value, inexact)) return Outcome.NotEqual;
            if (++valid == Points) return Outcome.Equal;
        }
        return Outcome.TooComplex;
    }

    private static Outcome CompareValues(Complex a, Complex b, bool literalInfinity, Func<Complex, Complex, bool> close)
    {
        var (fa, fb) = (Finite(a), Finite(b));
        if (fa && fb) return close(a, b) ? Outcome.Equal : Outcome.NotEqual;
        if (fa != fb) return IsRealInfinity(fa ? b : a) ? Outcome.NotEqual : Outcome.TooComplex; // huge vs finite
        if (literalInfinity && IsRealInfinity(a) && IsRealInfinity(b))
            return System.Math.Sign(a.Real) == System.Math.Sign(b.Real) ? Outcome.Equal : Outcome.NotEqual;
        return Outcome.TooComplex; // both overflowed: undecidable within bounds
    }

    private static bool IsRealInfinity(Complex c) => double.IsInfinity(c.Real) && c.Imaginary == 0;

    private bool Close(Complex a, Complex b, bool inexact)
    {
        var diff = Complex.Abs(a - b);
        var scale = System.Math.Max(Complex.Abs(a), Complex.Abs(b));
        var (rel, abs) = inexact ? (options.RelativeTolerance, options.AbsoluteTolerance) : (TightRelative, TightAbsolute);
        return diff <= System.Math.Max(rel * scale, abs);
    }

    private static bool Finite(Complex c) => double.IsFinite(c.Real) && double.IsFinite(c.Imaginary);

    private static readonly Dictionary<string, Complex> Empty = [];

    private IEnumerable<Dictionary<string, Complex>> SamplePoints(string[] vars)
    {
        var rng = new Random(options.Seed);
        for (var i = 0; i < 40; i++)
        {
            budget.Tick();
            var point = new Dictionary<string, Complex>();
            foreach (var v in vars)
                point[v] = (rng.Next(2) == 0 ? -1 : 1) * (0.3 + 2.2 * rng.NextDouble());
            yield return point;
        }
    }

    public static bool HasDecimal(Node n) => n switch
    {
        Num num => num.Inexact,
        Sum s => s.Terms.Any(HasDecimal),
        Product p => p.Factors.Any(HasDecimal),
        Power p => HasDecimal(p.Base) || HasDecimal(p.Exponent),
        Call c => c.Args.Any(HasDecimal),
        _ => false,
    };

    public static bool HasInfinity(Node n) => n switch
    {
        Const c => c.Kind == ConstKind.Infinity,
        Sum s => s.Terms.Any(HasInfinity),
        Product p => p.Factors.Any(HasInfinity),
        Power p => HasInfinity(p.Base) || HasInfinity(p.Exponent),
        Call c => c.Args.Any(HasInfinity),
        _ => false,
    };

    public static HashSet<string> Variables(Node n)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        Collect(n, set);
        return set;
    }

    private static void Collect(Node n, HashSet<string> set)
    {
        switch (n)
        {
            case Sym s: set.Add(s.Name); break;
            case Sum s: foreach (var t in s.Terms) Collect(t, set); break;
            case Product p: foreach (var f in p.Factors) Collect(f, set); break;
            case Power p: Collect(p.Base, set); Collect(p.Exponent, set); break;
            case Call c: foreach (var a in c.Args) Collect(a, set); break;
            case Relation r: foreach (var o in r.Operands) Collect(o, set); break;
        }
    }
}
