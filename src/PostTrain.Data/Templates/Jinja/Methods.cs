// Python methods templates call on values: str (startswith, endswith, split, rsplit, strip, lstrip, rstrip,
// replace, upper, lower, title, capitalize, find, rfind, index, count, join, format, splitlines, is* tests),
// dict (get, items, keys, values) and list (index, count). The immutable sandbox refuses the mutating ones
// (list.append, dict.update, ...) with a security_error when they are called.
using System.Globalization;
using System.Text;

namespace PostTrain.Data.Templates.Jinja;

public static class Methods
{
    private static readonly HashSet<string> Mutating =
        ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem", "add", "discard"];

    public static PyFunction? Bind(object? obj, string name)
    {
        Func<List<object?>, Dictionary<string, object?>, object?>? f = obj switch
        {
            string s => StringMethod(s, name),
            PyDict d => DictMethod(d, name),
            List<object?> l => ListMethod(l, name),
            _ => null,
        };
        if (f is null && obj is List<object?> or PyDict && Mutating.Contains(name))
            f = (_, _) => throw JinjaException.Security($"access to attribute '{name}' of '{PyTypes.Name(obj)}' object is unsafe");
        return f is null ? null : new PyFunction(name, f);
    }

    public static object? Arg(List<object?> args, Dictionary<string, object?> kwargs, int i, string name, object? def = null) =>
        i < args.Count ? args[i] : kwargs.TryGetValue(name, out var v) ? v : def;

    private static string? OptStr(object? v, string what) => v switch
    {
        null => null,
        string s => s,
        _ => throw JinjaException.Type($"{what} must be str or None, not {PyTypes.Name(v)}"),
    };

    private static long Int(object? v, string what) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw JinjaException.Type($"'{PyTypes.Name(v)}' object cannot be interpreted as an integer ({what})"),
    };

    private static string Str(object? v, string what) => v as string ?? throw JinjaException.Type($"{what} must be str, not {PyTypes.Name(v)}");

    private static Func<List<object?>, Dictionary<string, object?>, object?>? StringMethod(string s, string name) => name switch
    {
        "startswith" => (a, k) => Affix(s, Arg(a, k, 0, "prefix"), Arg(a, k, 1, "start"), Arg(a, k, 2, "end"), prefix: true),
        "endswith" => (a, k) => Affix(s, Arg(a, k, 0, "suffix"), Arg(a, k, 1, "start"), Arg(a, k, 2, "end"), prefix: false),
        "split" => (a, k) => PyStr.Split(s, OptStr(Arg(a, k, 0, "sep"), "sep"), Int(Arg(a, k, 1, "maxsplit", -1L), "maxsplit")),
        "rsplit" => (a, k) => PyStr.RSplit(s, OptStr(Arg(a, k, 0, "sep"), "sep"), Int(Arg(a, k, 1, "maxsplit", -1L), "maxsplit")),
        "strip" => (a, k) => PyStr.Strip(s, OptStr(Arg(a, k, 0, "chars"), "strip arg")),
        "lstrip" => (a, k) => PyStr.Strip(s, OptStr(Arg(a, k, 0, "chars"), "lstrip arg"), right: false),
        "rstrip" => (a, k) => PyStr.Strip(s, OptStr(Arg(a, k, 0, "chars"), "rstrip arg"), left: false),
        "replace" => (a, k) => Replace(s, Str(Arg(a, k, 0, "old"), "replace old"), Str(Arg(a, k, 1, "new"), "replace new"), Int(Arg(a, k, 2, "count", -1L), "count")),
        "upper" => (_, _) => s.ToUpperInvariant(),
        "lower" => (_, _) => s.ToLowerInvariant(),
        "title" => (_, _) => Title(s),
        "capitalize" => (_, _) => s.Length == 0 ? s : s[..1].ToUpperInvariant() + s[1..].ToLowerInvariant(),
        "find" => (a, k) => Find(s, Str(Arg(a, k, 0, "sub"), "find arg"), last: false),
        "rfind" => (a, k) => Find(s, Str(Arg(a, k, 0, "sub"), "rfind arg"), last: true),
        "index" => (a, k) => Find(s, Str(Arg(a, k, 0, "sub"), "index arg"), last: false) is long i && i >= 0 ? i : throw new JinjaException("value_error", "substring not found"),
        "count" => (a, k) => Count(s, Str(Arg(a, k, 0, "sub"), "count arg")),
        "join" => (a, k) => string.Join(s, PyOps.Iterate(Arg(a, k, 0, "iterable")).Select(x => x as string ?? throw JinjaException.Type($"sequence item: expected str instance, {PyTypes.Name(x)} found"))),
        "format" => (a, k) => Format(s, a, k),
        "splitlines" => (a, k) => SplitLines(s, PyOps.Truthy(Arg(a, k, 0, "keepends", false))),
        "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
        "isnumeric" => (_, _) => s.Length > 0 && s.All(char.IsNumber),
        "isalpha" => (_, _) => s.Length > 0 && s.All(char.IsLetter),
        "isalnum" => (_, _) => s.Length > 0 && s.All(char.IsLetterOrDigit),
        "isspace" => (_, _) => s.Length > 0 && s.All(PyStr.IsSpace),
        "islower" => (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsUpper),
        "isupper" => (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsLower),
        _ => null,
    };

    private static bool Affix(string s, object? affix, object? from, object? to, bool prefix)
    {
        var cps = PyStr.CodePoints(s);
        var idx = Slicing.Indices(cps.Length, from, to, null).ToList();
        var sub = string.Concat(idx.Select(i => cps[i]));
        IEnumerable<object?> options = affix is PyTuple t ? t.Items : [affix];
        foreach (var o in options)
        {
            var a = o as string ?? throw JinjaException.Type($"{(prefix ? "startswith" : "endswith")} first arg must be str or a tuple of str, not {PyTypes.Name(o)}");
            if (prefix ? sub.StartsWith(a, StringComparison.Ordinal) : sub.EndsWith(a, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    private static string Replace(string s, string old, string @new, long count)
    {
        if (count < 0) return old.Length == 0 ? InsertBetween(s, @new, -1) : s.Replace(old, @new, StringComparison.Ordinal);
        if (old.Length == 0) return InsertBetween(s, @new, count);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            int k = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (k < 0) break;
            sb.Append(s, pos, k - pos).Append(@new);
            pos = k + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static string InsertBetween(string s, string ins, long count)
    {
        var cps = PyStr.CodePoints(s);
        var sb = new StringBuilder();
        long n = 0;
        for (int i = 0; i <= cps.Length; i++)
        {
            if (count < 0 || n < count) { sb.Append(ins); n++; }
            if (i < cps.Length) sb.Append(cps[i]);
        }
        return sb.ToString();
    }

    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        foreach (var c in s)
        {
            sb.Append(prevCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevCased = char.IsLetter(c);
        }
        return sb.ToString();
    }

    private static long Find(string s, string sub, bool last)
    {
        int k = last ? s.LastIndexOf(sub, StringComparison.Ordinal) : s.IndexOf(sub, StringComparison.Ordinal);
        return k < 0 ? -1 : PyStr.CodePointCount(s[..k]);
    }

    private static long Count(string s, string sub)
    {
        if (sub.Length == 0) return PyStr.CodePointCount(s) + 1;
        long n = 0;
        for (int k = s.IndexOf(sub, StringComparison.Ordinal); k >= 0; k = s.IndexOf(sub, k + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static List<object?> SplitLines(string s, bool keepEnds)
    {
        var lines = new List<object?>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is not ('\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')) continue;
            int end = i;
            if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
            lines.Add(keepEnds ? s[start..(i + 1)] : s[start..end]);
            start = i + 1;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    /// <summary>str.format with {} / {0} / {name} fields and {{ }} escapes; format specs are not supported.</summary>
    private static string Format(string s, List<object?> args, Dictionary<string, object?> kwargs)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '{' && i + 1 < s.Length && s[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < s.Length && s[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{') { sb.Append(c); continue; }
            int close = s.IndexOf('}', i);
            if (close < 0) throw new JinjaException("value_error", "Single '{' encountered in format string");
            var field = s[(i + 1)..close];
            if (field.Contains(':') || field.Contains('!')) throw JinjaException.Runtime($"str.format: format spec in '{{{field}}}' is not supported");
            object? v = field.Length == 0 ? Arg(args, [], auto++, "")
                : int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? Arg(args, [], n, "")
                : kwargs.TryGetValue(field, out var kv) ? kv : throw new JinjaException("key_error", $"'{field}'");
            sb.Append(PyStr.Str(v));
            i = close;
        }
        return sb.ToString();
    }

    private static Func<List<object?>, Dictionary<string, object?>, object?>? DictMethod(PyDict d, string name) => name switch
    {
        "get" => (a, k) => Arg(a, k, 0, "key") is { } key && d.TryGetValue(key, out var v) ? v : Arg(a, k, 1, "default"),
        "items" => (_, _) => d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList(),
        "keys" => (_, _) => d.Keys.Cast<object?>().ToList(),
        "values" => (_, _) => d.Values.ToList(),
        "copy" => (_, _) => { var c = new PyDict(); foreach (var (k, v) in d) c[k] = v; return c; },
        _ => null,
    };

    private static Func<List<object?>, Dictionary<string, object?>, object?>? ListMethod(List<object?> l, string name) => name switch
    {
        "index" => (a, k) => l.FindIndex(x => PyOps.Equal(x, Arg(a, k, 0, "value"))) is var i && i >= 0 ? (long)i : throw new JinjaException("value_error", "value is not in list"),
        "count" => (a, k) => (long)l.Count(x => PyOps.Equal(x, Arg(a, k, 0, "value"))),
        "copy" => (_, _) => new List<object?>(l),
        _ => null,
    };
}
