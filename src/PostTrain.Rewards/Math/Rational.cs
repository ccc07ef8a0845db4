// Exact rational numbers on BigInteger (always reduced, positive denominator). Operations refuse results
// larger than Budget.MaxExactBits by throwing NotExactException, so the caller falls back to floating point.
using System.Globalization;
using System.Numerics;

namespace PostTrain.Rewards.Math;

internal sealed class NotExactException() : Exception("not exact");

internal readonly record struct Rational
{
    public BigInteger Num { get; }
    public BigInteger Den { get; }

    public Rational(BigInteger num, BigInteger den)
    {
        if (den.IsZero) throw new DivideByZeroException();
        if (den.Sign < 0) { num = -num; den = -den; }
        var g = BigInteger.GreatestCommonDivisor(num, den);
        if (!g.IsOne && !g.IsZero) { num /= g; den /= g; }
        if (num.IsZero) den = BigInteger.One;
        if (num.GetBitLength() + den.GetBitLength() > Budget.MaxExactBits) throw new NotExactException();
        Num = num;
        Den = den;
    }

    public static readonly Rational Zero = new(0, 1);
    public static readonly Rational One = new(1, 1);

    public bool IsZero => Num.IsZero;
    public bool IsInteger => Den.IsOne;
    public int Sign => Num.Sign;

    public static Rational operator +(Rational a, Rational b) => new(a.Num * b.Den + b.Num * a.Den, a.Den * b.Den);
    public static Rational operator -(Rational a, Rational b) => new(a.Num * b.Den - b.Num * a.Den, a.Den * b.Den);
    public static Rational operator -(Rational a) => new(-a.Num, a.Den);
    public static Rational operator *(Rational a, Rational b) => new(a.Num * b.Num, a.Den * b.Den);
    public static Rational operator /(Rational a, Rational b) => new(a.Num * b.Den, a.Den * b.Num);

    /// <summary>a^n for an integer n; refuses when the result would exceed the exact size bound.</summary>
    public Rational Pow(BigInteger n)
    {
        if (n.IsZero) return One;
        if (IsZero) return n.Sign > 0 ? Zero : throw new DivideByZeroException();
        var bits = (double)(Num.GetBitLength() + Den.GetBitLength());
        if (bits > 2 && bits * (double)BigInteger.Abs(n) > Budget.MaxExactBits) throw new NotExactException();
        if (BigInteger.Abs(n) > Budget.MaxExactBits) throw new NotExactException(); // (+-1)^huge: leave to floats
        var e = (int)BigInteger.Abs(n);
        var r = new Rational(BigInteger.Pow(Num, e), BigInteger.Pow(Den, e));
        return n.Sign > 0 ? r : One / r;
    }

    /// <summary>The exact k-th root when numerator and denominator are perfect k-th powers, else null.</summary>
    public Rational? Root(int k)
    {
        if (Sign < 0) return k % 2 == 1 ? -((-this).Root(k) ?? throw new NotExactException()) : null;
        var n = IntRoot(Num, k);
        var d = IntRoot(Den, k);
        return n is { } a && d is { } b ? new Rational(a, b) : null;
    }

    private static BigInteger? IntRoot(BigInteger x, int k)
    {
        if (x.IsZero || x.IsOne) return x;
        var guess = new BigInteger(System.Math.Round(System.Math.Pow((double)x, 1.0 / k)));
        for (var d = -1; d <= 1; d++)
        {
            var c = guess + d;
            if (c.Sign > 0 && BigInteger.Pow(c, k) == x) return c;
        }
        return null;
    }

    public double ToDouble()
    {
        var v = (double)Num / (double)Den;
        if (double.IsFinite(v) && v != 0) return v;
        // huge numerator and denominator: scale down before dividing
        var shift = (int)System.Math.Max(0, System.Math.Max(Num.GetBitLength(), Den.GetBitLength()) - 1000);
        return (double)(Num >> shift) / (double)(Den >> shift);
    }

    public static Rational Parse(string digits)
    {
        var dot = digits.IndexOf('.');
        if (dot < 0) return new Rational(BigInteger.Parse(digits, CultureInfo.InvariantCulture), 1);
        var whole = digits[..dot] + digits[(dot + 1)..];
        if (whole.Length == 0) whole = "0";
        var scale = digits.Length - dot - 1;
        if (scale > 1000) throw new MathTooComplexException("number too long");
        return new Rational(BigInteger.Parse(whole, CultureInfo.InvariantCulture), BigInteger.Pow(10, scale));
    }

    public override string ToString() => Den.IsOne ? Num.ToString(CultureInfo.InvariantCulture)
        : $"{Num.ToString(CultureInfo.InvariantCulture)}/{Den.ToString(CultureInfo.InvariantCulture)}";
}
