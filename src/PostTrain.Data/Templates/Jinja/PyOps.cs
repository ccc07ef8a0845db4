// Python value semantics behind jinja2's operators: truthiness, ==, ordering, + - * / // % **, `in`, len and
// iteration (strings iterate, index and count by code point, as Python's str does). Undefined follows
// jinja2.Undefined: falsy, empty when iterated, length 0, equal only to another Undefined, and an
// undefined_error under arithmetic. Mixing types the way Python refuses ("a" + {}) is a type_error.
using System.Text;

namespace PostTrain.Data.Templates.Jinja;

public static class PyOps
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        PyTuple t => t.Items.Length > 0,
        PyDict d => d.Count > 0,
        _ => true,
    };

    public static bool IsNumber(object? v) => v is long or double or bool;

    private static double AsDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => throw new InvalidOperationException() };
    private static long AsLong(object? v) => v switch { long l => l, bool b => b ? 1 : 0, _ => throw new InvalidOperationException() };

    public static bool Equal(object? a, object? b)
    {
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? AsDouble(a) == AsDouble(b) : AsLong(a) == AsLong(b);
        return (a, b) switch
        {
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => SeqEqual(x, y),
            (PyTuple x, PyTuple y) => SeqEqual(x.Items, y.Items),
            (PyDict x, PyDict y) => x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var v) && Equal(kv.Value, v)),
            (Undefined, Undefined) => true,
            _ => ReferenceEquals(a, b),
        };
    }

    private static bool SeqEqual(IList<object?> x, IList<object?> y)
    {
        if (x.Count != y.Count) return false;
        for (int i = 0; i < x.Count; i++) if (!Equal(x[i], y[i])) return false;
        return true;
    }

    /// <summary>Python's ordering: numbers with numbers, strings by code point, lists/tuples lexicographically.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        if (a is Undefined u) throw u.Error();
        if (b is Undefined ub) throw ub.Error();
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? AsDouble(a).CompareTo(AsDouble(b)) : AsLong(a).CompareTo(AsLong(b));
        switch (a, b)
        {
            case (string x, string y): return string.CompareOrdinal(PyStr.Utf32Key(x), PyStr.Utf32Key(y)) switch { < 0 => -1, > 0 => 1, _ => 0 };
            case (List<object?> x, List<object?> y): return SeqCompare(x, y, op);
            case (PyTuple x, PyTuple y): return SeqCompare(x.Items, y.Items, op);
        }
        throw JinjaException.Type($"'{op}' not supported between instances of '{PyTypes.Name(a)}' and '{PyTypes.Name(b)}'");
    }

    private static int SeqCompare(IList<object?> x, IList<object?> y, string op)
    {
        for (int i = 0; i < Math.Min(x.Count, y.Count); i++)
            if (!Equal(x[i], y[i])) return Compare(x[i], y[i], op);
        return x.Count.CompareTo(y.Count);
    }

    public static object? Add(object? a, object? b)
    {
        ThrowIfUndefined(a, b);
        if (IsNumber(a) && IsNumber(b)) return a is double || b is double ? AsDouble(a) + AsDouble(b) : (object)(AsLong(a) + AsLong(b));
        switch (a, b)
        {
            case (string x, string y): return x + y;
            case (List<object?> x, List<object?> y): return new List<object?>([.. x, .. y]);
            case (PyTuple x, PyTuple y): return new PyTuple([.. x.Items, .. y.Items]);
            case (string, _): throw JinjaException.Type($"can only concatenate str (not \"{PyTypes.Name(b)}\") to str");
            case (List<object?>, _): throw JinjaException.Type($"can only concatenate list (not \"{PyTypes.Name(b)}\") to list");
        }
        throw Unsupported("+", a, b);
    }

    public static object? Arith(string op, object? a, object? b)
    {
        if (op == "+") return Add(a, b);
        ThrowIfUndefined(a, b);
        if (op == "*")
        {
            if (a is string s && b is long or bool) return Repeat(s, AsLong(b));
            if (b is string s2 && a is long or bool) return Repeat(s2, AsLong(a));
            if (a is List<object?> l && b is long or bool) return RepeatList(l, AsLong(b));
            if (b is List<object?> l2 && a is long or bool) return RepeatList(l2, AsLong(a));
        }
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported(op, a, b);
        bool isFloat = a is double || b is double;
        switch (op)
        {
            case "-": return isFloat ? AsDouble(a) - AsDouble(b) : (object)(AsLong(a) - AsLong(b));
            case "*": return isFloat ? AsDouble(a) * AsDouble(b) : (object)(AsLong(a) * AsLong(b));
            case "/":
                if (AsDouble(b) == 0) throw new JinjaException("zero_division", "division by zero");
                return AsDouble(a) / AsDouble(b);
            case "//":
                if (AsDouble(b) == 0) throw new JinjaException("zero_division", "integer division or modulo by zero");
                if (isFloat) return Math.Floor(AsDouble(a) / AsDouble(b));
                return FloorDiv(AsLong(a), AsLong(b));
            case "%":
                if (AsDouble(b) == 0) throw new JinjaException("zero_division", "integer modulo by zero");
                if (isFloat) { double x = AsDouble(a), y = AsDouble(b), r = x % y; return r != 0 && (r < 0) != (y < 0) ? r + y : r; }
                { long x = AsLong(a), y = AsLong(b); return x - FloorDiv(x, y) * y; }
            case "**":
                if (!isFloat && AsLong(b) >= 0) { long r = 1, x = AsLong(a); for (long i = 0; i < AsLong(b); i++) r *= x; return r; }
                return Math.Pow(AsDouble(a), AsDouble(b));
        }
        throw Unsupported(op, a, b);
    }

    private static long FloorDiv(long a, long b) { long q = a / b; return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q; }
    private static string Repeat(string s, long n) => n <= 0 ? "" : new StringBuilder().Insert(0, s, (int)n).ToString();
    private static List<object?> RepeatList(List<object?> l, long n) { var r = new List<object?>(); for (long i = 0; i < n; i++) r.AddRange(l); return r; }

    public static object? Negate(object? a) => a switch
    {
        Undefined u => throw u.Error(),
        long l => (object)(-l),
        double d => -d,
        bool b => b ? -1L : 0L,
        _ => throw JinjaException.Type($"bad operand type for unary -: '{PyTypes.Name(a)}'"),
    };

    private static void ThrowIfUndefined(object? a, object? b)
    {
        if (a is Undefined u) throw u.Error();
        if (b is Undefined u2) throw u2.Error();
    }

    private static JinjaException Unsupported(string op, object? a, object? b) =>
        JinjaException.Type($"unsupported operand type(s) for {op}: '{PyTypes.Name(a)}' and '{PyTypes.Name(b)}'");

    /// <summary>Python's `item in container`.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw JinjaException.Type($"'in <string>' requires string as left operand, not {PyTypes.Name(item)}"),
        List<object?> l => l.Any(x => Equal(x, item)),
        PyTuple t => t.Items.Any(x => Equal(x, item)),
        PyDict d => item is not null && d.ContainsKey(item),
        Namespace n => item is string k && n.Attributes.ContainsKey(k),
        Undefined => false,
        _ => throw JinjaException.Type($"argument of type '{PyTypes.Name(container)}' is not iterable"),
    };

    /// <summary>Python's iter(): list items, tuple items, dict keys, a string's code points; Undefined is empty.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        List<object?> l => [.. l],
        PyTuple t => [.. t.Items],
        PyDict d => [.. d.Keys],
        string s => [.. PyStr.CodePoints(s)],
        Undefined => [],
        _ => throw JinjaException.Type($"'{PyTypes.Name(v)}' object is not iterable"),
    };

    public static long Length(object? v) => v switch
    {
        string s => PyStr.CodePointCount(s),
        List<object?> l => l.Count,
        PyTuple t => t.Items.Length,
        PyDict d => d.Count,
        Undefined => 0,
        _ => throw JinjaException.Type($"object of type '{PyTypes.Name(v)}' has no len()"),
    };
}
