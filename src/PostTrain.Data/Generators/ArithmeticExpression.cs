// Evaluates an arithmetic expression of non-negative integers, + - * /, and parentheses, exactly (as a
// fraction), and lists the integer literals it uses: enough to check a Countdown answer.
namespace PostTrain.Data.Generators;

public static class ArithmeticExpression
{
    /// <summary>The value as numerator/denominator (denominator > 0), or null when the text does not parse
    /// or divides by zero. <paramref name="literals"/> gets the integers in the order written.</summary>
    public static (long Numerator, long Denominator)? Evaluate(string text, List<int> literals)
    {
        var parser = new Parser(text, literals);
        try
        {
            var value = parser.Sum();
            parser.SkipSpaces();
            return parser.AtEnd ? value : null;
        }
        catch (Exception e) when (e is FormatException or DivideByZeroException or OverflowException)
        {
            return null;
        }
    }

    private sealed class Parser(string text, List<int> literals)
    {
        private int _at;

        public bool AtEnd => _at >= text.Length;

        public void SkipSpaces()
        {
            while (_at < text.Length && text[_at] == ' ') _at++;
        }

        public (long, long) Sum()
        {
            var value = Product();
            while (true)
            {
                SkipSpaces();
                if (AtEnd || (text[_at] != '+' && text[_at] != '-')) return value;
                var op = text[_at++];
                var right = Product();
                value = op == '+' ? Add(value, right) : Add(value, (-right.Item1, right.Item2));
            }
        }

        private (long, long) Product()
        {
            var value = Atom();
            while (true)
            {
                SkipSpaces();
                if (AtEnd || (text[_at] != '*' && text[_at] != '/')) return value;
                var op = text[_at++];
                var right = Atom();
                if (op == '/' && right.Item1 == 0) throw new DivideByZeroException();
                value = op == '*' ? Reduce(checked(value.Item1 * right.Item1), checked(value.Item2 * right.Item2))
                    : Reduce(checked(value.Item1 * right.Item2), checked(value.Item2 * right.Item1));
            }
        }

        private (long, long) Atom()
        {
            SkipSpaces();
            if (AtEnd) throw new FormatException("unexpected end");
            if (text[_at] == '(')
            {
                _at++;
                var inner = Sum();
                SkipSpaces();
                if (AtEnd || text[_at] != ')') throw new FormatException("missing )");
                _at++;
                return inner;
            }
            var start = _at;
            while (_at < text.Length && char.IsAsciiDigit(text[_at])) _at++;
            if (start == _at) throw new FormatException($"expected a number at {start}");
            var n = int.Parse(text.AsSpan(start, _at - start), System.Globalization.CultureInfo.InvariantCulture);
            literals.Add(n);
            return (n, 1);
        }

        private static (long, long) Add((long N, long D) a, (long N, long D) b) =>
            Reduce(checked(a.N * b.D + b.N * a.D), checked(a.D * b.D));

        private static (long, long) Reduce(long n, long d)
        {
            if (d < 0) (n, d) = (-n, -d);
            var g = (long)System.Numerics.BigInteger.GreatestCommonDivisor(n, d);
            return g == 0 ? (n, d) : (n / g, d / g);
        }
    }
}
