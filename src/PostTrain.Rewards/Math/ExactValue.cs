// An exact complex number re + im*i with rational parts, for answers built from integers, fractions,
// decimals, i, + - * / and integer powers. Anything else (pi, sqrt of a non-square, functions) is not exact.
namespace PostTrain.Rewards.Math;

internal readonly record struct ExactValue(Rational Re, Rational Im)
{
    public static ExactValue Real(Rational r) => new(r, Rational.Zero);
    public static readonly ExactValue I = new(Rational.Zero, Rational.One);

    public bool IsReal => Im.IsZero;
    public bool IsZero => Re.IsZero && Im.IsZero;

    public static ExactValue operator +(ExactValue a, ExactValue b) => new(a.Re + b.Re, a.Im + b.Im);
    public static ExactValue operator -(ExactValue a, ExactValue b) => new(a.Re - b.Re, a.Im - b.Im);
    public static ExactValue operator -(ExactValue a) => new(-a.Re, -a.Im);

    public static ExactValue operator *(ExactValue a, ExactValue b) =>
        new(a.Re * b.Re - a.Im * b.Im, a.Re * b.Im + a.Im * b.Re);

    public static ExactValue operator /(ExactValue a, ExactValue b)
    {
        if (b.IsZero) throw new DivideByZeroException();
        if (b.IsReal) return new(a.Re / b.Re, a.Im / b.Re);
        var d = b.Re * b.Re + b.Im * b.Im;
        return new((a.Re * b.Re + a.Im * b.Im) / d, (a.Im * b.Re - a.Re * b.Im) / d);
    }

    public ExactValue Pow(System.Numerics.BigInteger n)
    {
        if (IsReal) return Real(Re.Pow(n));
        if (System.Numerics.BigInteger.Abs(n) > 256) throw new NotExactException();
        var e = (int)System.Numerics.BigInteger.Abs(n);
        var result = Real(Rational.One);
        var b = this;
        while (e > 0)
        {
            if ((e & 1) == 1) result *= b;
            b *= b;
            e >>= 1;
        }
        return n.Sign >= 0 ? result : Real(Rational.One) / result;
    }

    public System.Numerics.Complex ToComplex() => new(Re.ToDouble(), Im.ToDouble());

    public override string ToString() => IsReal ? Re.ToString() : $"{Re}+{Im}i";
}
