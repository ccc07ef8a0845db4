// Exact evaluation of a constant scalar to a complex rational. Throws NotExactException for anything that
// has no exact rational value (pi, e, variables, non-square roots, transcendental functions, results that
// would be too large), so the caller falls back to floating point.
using System.Numerics;

namespace PostTrain.Rewards.Math;

internal static class ExactEvaluator
{
    public static ExactValue? TryEvaluate(Node node, Budget budget)
    {
        try { return Eval(node, budget, 0); }
        catch (NotExactException) { return null; }
        catch (DivideByZeroException) { return null; }
    }

    private static ExactValue Eval(Node node, Budget budget, int depth)
    {
        budget.CheckDepth(depth);
        switch (node)
        {
            case Num n:
                return ExactValue.Real(n.Value);
            case Const { Kind: ConstKind.I }:
                return ExactValue.I;
            case Sum s:
                var sum = ExactValue.Real(Rational.Zero);
                foreach (var t in s.Terms) sum += Eval(t, budget, depth + 1);
                return sum;
            case Product p:
                var prod = ExactValue.Real(Rational.One);
                foreach (var f in p.Factors) prod *= Eval(f, budget, depth + 1);
                return prod;
            case Power pw:
                return Pow(Eval(pw.Base, budget, depth + 1), Eval(pw.Exponent, budget, depth + 1));
            case Call c:
                return Function(c, budget, depth);
            default:
                throw new NotExactException();
        }
    }

    private static ExactValue Pow(ExactValue b, ExactValue e)
    {
        if (!e.IsReal) throw new NotExactException();
        var q = e.Re;
        if (q.IsInteger) return b.Pow(q.Num);
        // rational exponent p/q: exact only for a non-negative real base that is a perfect q-th power
        if (!b.IsReal || b.Re.Sign < 0 || q.Den > 64) throw new NotExactException();
        var root = b.Re.Root((int)q.Den) ?? throw new NotExactException();
        return ExactValue.Real(root.Pow(q.Num));
    }

    private static ExactValue Function(Call c, Budget budget, int depth)
    {
        var args = c.Args.Select(a => Eval(a, budget, depth + 1)).ToArray();
        if (args.Any(a => !a.IsReal)) throw new NotExactException();
        var x = args[0].Re;
        switch (c.Function)
        {
            case "sqrt":
                if (x.Sign < 0) throw new NotExactException();
                return ExactValue.Real(x.Root(2) ?? throw new NotExactException());
            case "root":
                var k = args[1].Re;
                if (!k.IsInteger || k.Sign <= 0 || k.Num > 64) throw new NotExactException();
                return ExactValue.Real(x.Root((int)k.Num) ?? throw new NotExactException());
            case "abs":
                return ExactValue.Real(x.Sign < 0 ? -x : x);
            case "floor":
            case "ceil":
                var fl = BigInteger.Divide(x.Num - (x.Num.Sign < 0 ? x.Den - 1 : 0), x.Den);
                var v = c.Function == "floor" || x.IsInteger ? fl : fl + 1;
                return ExactValue.Real(new Rational(v, 1));
            case "factorial":
                if (!x.IsInteger || x.Sign < 0 || x.Num > Budget.MaxFactorial) throw new NotExactException();
                var f = BigInteger.One;
                for (var i = 2; i <= (int)x.Num; i++) f *= i;
                return ExactValue.Real(new Rational(f, 1));
            case "binom":
                var r = args[1].Re;
                if (!x.IsInteger || !r.IsInteger || x.Num > 100000 || r.Num > Budget.MaxFactorial) throw new NotExactException();
                if (r.Sign < 0 || r.Num > x.Num) return ExactValue.Real(Rational.Zero);
                var acc = Rational.One;
                for (var i = 0; i < (int)r.Num; i++) acc = acc * new Rational(x.Num - i, i + 1);
                return ExactValue.Real(acc);
            default:
                throw new NotExactException();
        }
    }
}
