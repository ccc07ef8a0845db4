// Floating-point evaluation of a scalar over complex doubles, with variables bound to given values.
// Real inputs stay on the real branch where one exists (odd roots of negatives, integer powers).
// Overflow gives infinities or NaN, never an exception or a long loop.
using System.Numerics;
using MathNet.Numerics;

namespace PostTrain.Rewards.Math;

internal static class NumericEvaluator
{
    public static Complex Evaluate(Node node, IReadOnlyDictionary<string, Complex> vars, Budget budget) =>
        Eval(node, vars, budget, 0);

    private static Complex Eval(Node node, IReadOnlyDictionary<string, Complex> vars, Budget budget, int depth)
    {
        budget.CheckDepth(depth);
        switch (node)
        {
            case Num n: return new Complex(n.Value.ToDouble(), 0);
            case Sym s: return vars.TryGetValue(s.Name, out var v) ? v : throw new NotExactException();
            case Const c:
                return c.Kind switch
                {
                    ConstKind.Pi => new Complex(System.Math.PI, 0),
                    ConstKind.E => new Complex(System.Math.E, 0),
                    ConstKind.I => Complex.ImaginaryOne,
                    _ => new Complex(double.PositiveInfinity, 0),
                };
            case Sum s:
                var sum = Complex.Zero;
                foreach (var t in s.Terms) sum += Eval(t, vars, budget, depth + 1);
                return sum;
            case Product p:
                var prod = Complex.One;
                foreach (var f in p.Factors) prod = Mul(prod, Eval(f, vars, budget, depth + 1));
                return prod;
            case Power pw:
                return Pow(Eval(pw.Base, vars, budget, depth + 1), Eval(pw.Exponent, vars, budget, depth + 1));
            case Call c:
                var args = c.Args.Select(a => Eval(a, vars, budget, depth + 1)).ToArray();
                return Function(c.Function, args);
            default:
                throw new NotExactException();
        }
    }

    private static Complex Mul(Complex a, Complex b)
    {
        // keep real infinities real: -1 * oo = -oo, not (-oo, NaN)
        if (a.Imaginary == 0 && b.Imaginary == 0) return new Complex(a.Real * b.Real, 0);
        return a * b;
    }

    private const double MaxExponent = 1e6;

    private static Complex Pow(Complex b, Complex e)
    {
        // beyond this, floats only say "overflow" (kept as infinity, a true magnitude) or "underflow" (NaN:
        // 0.5^(10^10) is not 0, and must not compare equal to it)
        if (Complex.Abs(e) > MaxExponent && Complex.Abs(b) != 1 && b != Complex.Zero)
            return b.Imaginary == 0 && e.Imaginary == 0 && System.Math.Abs(b.Real) > 1 && e.Real > 0 && b.Real > 0
                ? new Complex(double.PositiveInfinity, 0) : new Complex(double.NaN, 0);
        if (b.Imaginary == 0 && e.Imaginary == 0)
        {
            var (x, y) = (b.Real, e.Real);
            if (x >= 0 || y == System.Math.Round(y)) return new Complex(System.Math.Pow(x, y), 0);
            // x^(p/q) with odd q: the real root, as \sqrt[q]{x}^p (x^(2/3) at x = -8 is 4)
            for (var q = 3; q <= 15; q += 2)
            {
                var p = y * q;
                if (System.Math.Abs(p - System.Math.Round(p)) < 1e-9)
                {
                    var magnitude = System.Math.Pow(-x, y);
                    return new Complex(((long)System.Math.Round(p) & 1) == 1 ? -magnitude : magnitude, 0);
                }
            }
        }
        if (b == Complex.Zero) return e.Real > 0 ? Complex.Zero : new Complex(double.NaN, 0);
        return Complex.Pow(b, e);
    }

    private static Complex Function(string name, Complex[] a)
    {
        var x = a[0];
        var real = x.Imaginary == 0;
        switch (name)
        {
            case "sin": return real ? System.Math.Sin(x.Real) : Complex.Sin(x);
            case "cos": return real ? System.Math.Cos(x.Real) : Complex.Cos(x);
            case "tan": return real ? System.Math.Tan(x.Real) : Complex.Tan(x);
            case "sec": return 1 / (real ? System.Math.Cos(x.Real) : Complex.Cos(x));
            case "csc": return 1 / (real ? System.Math.Sin(x.Real) : Complex.Sin(x));
            case "cot": return 1 / (real ? System.Math.Tan(x.Real) : Complex.Tan(x));
            case "asin": return real && System.Math.Abs(x.Real) <= 1 ? System.Math.Asin(x.Real) : Complex.Asin(x);
            case "acos": return real && System.Math.Abs(x.Real) <= 1 ? System.Math.Acos(x.Real) : Complex.Acos(x);
            case "atan": return real ? System.Math.Atan(x.Real) : Complex.Atan(x);
            case "sinh": return Complex.Sinh(x);
            case "cosh": return Complex.Cosh(x);
            case "tanh": return Complex.Tanh(x);
            case "exp": return real ? System.Math.Exp(x.Real) : Complex.Exp(x);
            case "ln": return real && x.Real > 0 ? System.Math.Log(x.Real) : Complex.Log(x);
            case "log":
                var ln = real && x.Real > 0 ? new Complex(System.Math.Log(x.Real), 0) : Complex.Log(x);
                return a.Length > 1 ? ln / Function("ln", [a[1]]) : ln; // \log without base: natural log, as sympy
            case "sqrt": return real && x.Real >= 0 ? System.Math.Sqrt(x.Real) : Complex.Sqrt(x);
            case "root":
                var n = a[1].Real;
                if (real && x.Real < 0 && n == System.Math.Round(n) && ((long)n & 1) == 1)
                    return -System.Math.Pow(-x.Real, 1 / n);
                return real && x.Real >= 0 ? System.Math.Pow(x.Real, 1 / n) : Complex.Pow(x, 1 / a[1]);
            case "abs": return Complex.Abs(x);
            case "floor": return System.Math.Floor(x.Real);
            case "ceil": return System.Math.Ceiling(x.Real);
            case "factorial":
                if (!real) return double.NaN;
                if (x.Real > 170) return double.PositiveInfinity;
                return x.Real == System.Math.Round(x.Real) && x.Real >= 0 ? SpecialFunctions.Factorial((int)x.Real)
                    : SpecialFunctions.Gamma(x.Real + 1);
            case "binom":
                var (nn, k) = (x.Real, a[1].Real);
                if (nn > 1e6 || k > 1e6) return double.PositiveInfinity;
                return SpecialFunctions.Binomial((int)nn, (int)k);
            default: return double.NaN;
        }
    }
}
