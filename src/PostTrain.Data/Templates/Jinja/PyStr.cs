// Python's str behaviour on .NET strings: code points (not UTF-16 units) for len, index and slice; Python's
// whitespace set for strip/split (str.isspace: Unicode Zs/Zl/Zp, \t\n\v\f\r, \x1c-\x1f, \x85); and the string
// and number formatting of str()/repr(): None/True/False, repr of floats (shortest round-trip, exponent
// outside 1e-4..1e16), repr of strings (quotes and escapes as CPython picks them), lists, tuples and dicts.
using System.Globalization;
using System.Text;

namespace PostTrain.Data.Templates.Jinja;

public static class PyStr
{
    public static string[] CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { list.Add(s.Substring(i, 2)); i++; }
            else list.Add(s[i].ToString());
        }
        return [.. list];
    }

    public static long CodePointCount(string s)
    {
        long n = 0;
        for (int i = 0; i < s.Length; i++) { n++; if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++; }
        return n;
    }

    /// <summary>A key that orders like Python's code-point comparison under ordinal UTF-16 comparison.</summary>
    public static string Utf32Key(string s)
    {
        if (!s.Any(char.IsSurrogate)) return s;
        var sb = new StringBuilder();
        foreach (var cp in CodePoints(s)) sb.Append(char.ConvertToUtf32(cp, 0) >= 0x10000 ? "\uFFFF" + cp : cp);
        return sb.ToString();
    }

    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || (c >= '\x1c' && c <= '\x1f');

    public static string Strip(string s, string? chars, bool left = true, bool right = true)
    {
        Func<char, bool> strip = chars is null ? IsSpace : c => chars.Contains(c);
        int start = 0, end = s.Length;
        if (left) while (start < end && strip(s[start])) start++;
        if (right) while (end > start && strip(s[end - 1])) end--;
        return s[start..end];
    }

    /// <summary>str.split(sep=None, maxsplit=-1).</summary>
    public static List<object?> Split(string s, string? sep, long maxsplit)
    {
        var parts = new List<object?>();
        if (sep is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && IsSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxsplit >= 0 && parts.Count == maxsplit) { parts.Add(Strip(s[i..], null, left: false)); break; }
                int j = i;
                while (j < s.Length && !IsSpace(s[j])) j++;
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        if (sep.Length == 0) throw new JinjaException("value_error", "empty separator");
        int pos = 0;
        while (maxsplit < 0 || parts.Count < maxsplit)
        {
            int k = s.IndexOf(sep, pos, StringComparison.Ordinal);
            if (k < 0) break;
            parts.Add(s[pos..k]);
            pos = k + sep.Length;
        }
        parts.Add(s[pos..]);
        return parts;
    }

    /// <summary>str.rsplit(sep, maxsplit) for an explicit separator.</summary>
    public static List<object?> RSplit(string s, string? sep, long maxsplit)
    {
        if (sep is null || maxsplit < 0) return Split(s, sep, maxsplit);
        var parts = new List<object?>();
        int end = s.Length;
        while (parts.Count < maxsplit)
        {
            int k = end - sep.Length < 0 ? -1 : s.LastIndexOf(sep, end - 1, end, StringComparison.Ordinal);
            if (k < 0 || sep.Length == 0) break;
            parts.Insert(0, s[(k + sep.Length)..end]);
            end = k;
        }
        parts.Insert(0, s[..end]);
        return parts;
    }

    /// <summary>Python's str(v) as jinja2 prints a value ({{ v }}); Undefined prints as "".</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    public static string Repr(object? v) => v switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => StringRepr(s),
        List<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        PyTuple t => t.Items.Length == 1 ? "(" + Repr(t.Items[0]) + ",)" : "(" + string.Join(", ", t.Items.Select(Repr)) + ")",
        PyDict d => "{" + string.Join(", ", d.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}",
        Undefined => "Undefined",
        Namespace n => "<Namespace " + "{" + string.Join(", ", n.Attributes.Select(kv => StringRepr(kv.Key) + ": " + Repr(kv.Value))) + "}>",
        PyFunction f => $"<function {f.Name}>",
        LoopInfo => "<LoopContext>",
        _ => v.ToString() ?? "",
    };

    /// <summary>repr(float): the shortest digits that round-trip, in exponent form below 1e-4 or from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        var shortest = d.ToString("R", CultureInfo.InvariantCulture);
        string digits; int exp; bool neg = d < 0;
        {
            var t = shortest.TrimStart('-');
            int e = 0;
            int ePos = t.IndexOfAny(['E', 'e']);
            if (ePos >= 0) { e = int.Parse(t[(ePos + 1)..], CultureInfo.InvariantCulture); t = t[..ePos]; }
            int dot = t.IndexOf('.');
            string intPart = dot >= 0 ? t[..dot] : t, frac = dot >= 0 ? t[(dot + 1)..] : "";
            var all = (intPart + frac).TrimStart('0');
            int lead = (intPart + frac).Length - all.Length;
            exp = intPart.Length - 1 - lead + e;   // decimal exponent of the first significant digit
            digits = all.TrimEnd('0');
            if (digits.Length == 0) digits = "0";
        }
        var sb = new StringBuilder();
        if (neg) sb.Append('-');
        if (exp < -4 || exp >= 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            sb.Append('e').Append(exp < 0 ? '-' : '+').Append(Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (exp < 0) sb.Append("0.").Append('0', -exp - 1).Append(digits);
        else if (digits.Length <= exp + 1) sb.Append(digits).Append('0', exp + 1 - digits.Length).Append(".0");
        else sb.Append(digits, 0, exp + 1).Append('.').Append(digits, exp + 1, digits.Length - exp - 1);
        return sb.ToString();
    }

    /// <summary>repr(str): single quotes unless the text has ' and no "; escapes \\, the quote, \t \n \r,
    /// non-printable characters as \xNN, \uNNNN or \UNNNNNNNN.</summary>
    public static string StringRepr(string s)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(q);
        foreach (var cp in CodePoints(s))
        {
            int c = cp.Length == 2 ? char.ConvertToUtf32(cp[0], cp[1]) : cp[0];
            switch (c)
            {
                case '\\': sb.Append("\\\\"); continue;
                case '\n': sb.Append("\\n"); continue;
                case '\r': sb.Append("\\r"); continue;
                case '\t': sb.Append("\\t"); continue;
            }
            if (c == q) { sb.Append('\\').Append(q); continue; }
            if (IsPrintable(c)) { sb.Append(cp); continue; }
            if (c < 0x100) sb.Append("\\x").Append(c.ToString("x2", CultureInfo.InvariantCulture));
            else if (c < 0x10000) sb.Append("\\u").Append(c.ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append("\\U").Append(c.ToString("x8", CultureInfo.InvariantCulture));
        }
        return sb.Append(q).ToString();
    }

    private static bool IsPrintable(int c)
    {
        if (c == ' ') return true;
        if (c >= 0xD800 && c <= 0xDFFF) return false;
        var cat = CharUnicodeInfo.GetUnicodeCategory(c);
        return cat is not (UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);
    }
}
