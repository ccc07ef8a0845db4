// jinja2's built-in filters used by chat templates (and the common rest), with transformers' tojson:
// trim, tojson, length/count, string, upper, lower, capitalize, title, replace, default/d, join, first,
// last, list, items, dictsort, selectattr, rejectattr, select, reject, map, unique, sort, reverse, sum,
// min, max, abs, round, int, float, indent, center, wordcount, truncate, safe, e/escape, format.
// Attribute arguments (selectattr('function.name'), map(attribute='x')) follow dotted paths with getitem.
using System.Globalization;
using System.Text;

namespace PostTrain.Data.Templates.Jinja;

public static class Filters
{
    public static object? Apply(string name, object? v, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? A(int i, string n, object? def = null) => Methods.Arg(args, kwargs, i, n, def);
        switch (name)
        {
            case "trim": return PyStr.Strip(PyStr.Str(v), A(0, "chars") as string);
            case "tojson": return ToJson(v, args, kwargs);
            case "length" or "count": return PyOps.Length(v);
            case "string": return PyStr.Str(v);
            case "upper": return PyStr.Str(v).ToUpperInvariant();
            case "lower": return PyStr.Str(v).ToLowerInvariant();
            case "capitalize": { var s = PyStr.Str(v); return s.Length == 0 ? s : s[..1].ToUpperInvariant() + s[1..].ToLowerInvariant(); }
            case "title": return Methods.Bind(PyStr.Str(v), "title")!.Invoke([], []);
            case "replace":
                return Methods.Bind(PyStr.Str(v), "replace")!.Invoke([A(0, "old"), A(1, "new"), A(2, "count") ?? -1L], []);
            case "default" or "d":
                return v is Undefined || (PyOps.Truthy(A(1, "boolean", false)) && !PyOps.Truthy(v)) ? A(0, "default_value", "") : v;
            case "join":
                {
                    var items = PyOps.Iterate(v);
                    if (A(1, "attribute") is { } attr) items = items.Select(x => Path(x, attr)).ToList();
                    return string.Join(PyStr.Str(A(0, "d", "")), items.Select(PyStr.Str));
                }
            case "first": { var l = PyOps.Iterate(v); return l.Count > 0 ? l[0] : new Undefined("No first item, sequence was empty."); }
            case "last": { var l = PyOps.Iterate(v); return l.Count > 0 ? l[^1] : new Undefined("No last item, sequence was empty."); }
            case "list": return PyOps.Iterate(v);
            case "items":
                return v switch
                {
                    Undefined => new List<object?>(),
                    PyDict d => d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList(),
                    _ => throw JinjaException.Type($"Can only get item pairs from a mapping, not {PyTypes.Name(v)}"),
                };
            case "dictsort":
                {
                    if (v is not PyDict d) throw JinjaException.Type("dictsort needs a mapping");
                    bool byValue = A(1, "by", "key") is "value";
                    var pairs = d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList();
                    bool cs = PyOps.Truthy(A(0, "case_sensitive", false));
                    pairs.Sort((x, y) => PyOps.Compare(SortKey(((PyTuple)x!).Items[byValue ? 1 : 0], cs), SortKey(((PyTuple)y!).Items[byValue ? 1 : 0], cs), "<"));
                    if (PyOps.Truthy(A(2, "reverse", false))) pairs.Reverse();
                    return pairs;
                }
            case "selectattr" or "rejectattr":
                {
                    var attr = A(0, "attr") ?? throw JinjaException.Type($"{name} needs an attribute name");
                    bool keep = name == "selectattr";
                    return PyOps.Iterate(v).Where(x => Check(Path(x, attr), args.Skip(1).ToList()) == keep).ToList();
                }
            case "select" or "reject":
                {
                    bool keep = name == "select";
                    return PyOps.Iterate(v).Where(x => Check(x, args) == keep).ToList();
                }
            case "map":
                {
                    var items = PyOps.Iterate(v);
                    if (kwargs.TryGetValue("attribute", out var attr))
                        return items.Select(x => Path(x, attr!) is Undefined && kwargs.TryGetValue("default", out var def) ? def : Path(x, attr!)).ToList();
                    if (args.Count == 0) throw JinjaException.Runtime("map needs a filter name or attribute=");
                    var filter = args[0] as string ?? throw JinjaException.Type("map: the filter name must be a string");
                    return items.Select(x => Apply(filter, x, args.Skip(1).ToList(), kwargs)).ToList();
                }
            case "unique":
                {
                    var seen = new List<object?>();
                    bool cs = PyOps.Truthy(A(0, "case_sensitive", false));
                    foreach (var x in PyOps.Iterate(v)) if (!seen.Any(s => PyOps.Equal(SortKey(s, cs), SortKey(x, cs)))) seen.Add(x);
                    return seen;
                }
            case "sort":
                {
                    var items = PyOps.Iterate(v);
                    bool cs = PyOps.Truthy(A(1, "case_sensitive", false));
                    var attr = A(2, "attribute");
                    object? Key(object? x) => SortKey(attr is null ? x : Path(x, attr), cs);
                    var sorted = items.Select((x, i) => (x, i)).ToList();
                    sorted.Sort((p, q) => PyOps.Compare(Key(p.x), Key(q.x), "<") is var c && c != 0 ? c : p.i.CompareTo(q.i));
                    var r = sorted.Select(p => p.x).ToList();
                    if (PyOps.Truthy(A(0, "reverse", false))) r.Reverse();
                    return r;
                }
            case "reverse":
                if (v is string str) return string.Concat(PyStr.CodePoints(str).Reverse());
                { var l = PyOps.Iterate(v); l.Reverse(); return l; }
            case "sum":
                {
                    object? total = A(1, "start", 0L);
                    var attr = A(0, "attribute");
                    foreach (var x in PyOps.Iterate(v)) total = PyOps.Add(total, attr is null ? x : Path(x, attr));
                    return total;
                }
            case "min" or "max":
                {
                    var items = PyOps.Iterate(v);
                    if (items.Count == 0) return new Undefined($"No aggregated item, sequence was empty.");
                    bool cs = PyOps.Truthy(A(0, "case_sensitive", false));
                    var best = items[0];
                    foreach (var x in items.Skip(1))
                    {
                        int c = PyOps.Compare(SortKey(x, cs), SortKey(best, cs), "<");
                        if (name == "min" ? c < 0 : c > 0) best = x;
                    }
                    return best;
                }
            case "abs": return v switch { long l => (object)Math.Abs(l), double d => Math.Abs(d), bool b => b ? 1L : 0L, _ => throw JinjaException.Type($"bad operand type for abs(): '{PyTypes.Name(v)}'") };
            case "round":
                {
                    var precision = (int)(A(0, "precision", 0L) as long? ?? 0);
                    var method = A(1, "method", "common") as string;
                    double d = v switch { long l => l, double x => x, bool b => b ? 1 : 0, _ => throw JinjaException.Type("round needs a number") };
                    double f = Math.Pow(10, precision);
                    return method switch
                    {
                        "ceil" => Math.Ceiling(d * f) / f,
                        "floor" => Math.Floor(d * f) / f,
                        _ => Math.Round(d * f, MidpointRounding.AwayFromZero) / f,
                    };
                }
            case "int":
                return v switch
                {
                    long l => (object)l,
                    bool b => b ? 1L : 0L,
                    double d => (long)Math.Truncate(d),
                    string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => l,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => (long)Math.Truncate(d),
                    _ => A(0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long l => (object)(double)l,
                    double d => d,
                    bool b => b ? 1.0 : 0.0,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
                    _ => A(0, "default", 0.0),
                };
            case "indent": return Indent(PyStr.Str(v), A(0, "width", 4L), PyOps.Truthy(A(1, "first", false)), PyOps.Truthy(A(2, "blank", false)));
            case "center":
                {
                    var s = PyStr.Str(v);
                    long width = A(0, "width", 80L) as long? ?? 80, len = PyStr.CodePointCount(s);
                    if (len >= width) return s;
                    long total = width - len, left = total / 2 + (total & width & 1);
                    return new string(' ', (int)left) + s + new string(' ', (int)(total - left));
                }
            case "wordcount": return (long)PyStr.Split(PyStr.Str(v), null, -1).Count;
            case "truncate":
                {
                    var s = PyStr.Str(v);
                    long length = A(0, "length", 255L) as long? ?? 255, leeway = A(3, "leeway", 5L) as long? ?? 5;
                    bool killwords = PyOps.Truthy(A(1, "killwords", false));
                    string end = A(2, "end", "...") as string ?? "...";
                    var cps = PyStr.CodePoints(s);
                    if (cps.Length <= length + leeway) return s;
                    var cut = string.Concat(cps.Take((int)Math.Max(0, length - PyStr.CodePointCount(end))));
                    if (killwords) return cut + end;
                    int sp = cut.LastIndexOf(' ');
                    return (sp >= 0 ? cut[..sp] : cut) + end;
                }
            case "safe": return v;
            case "e" or "escape" or "forceescape":
                return PyStr.Str(v).Replace("&", "&amp;").Replace(">", "&gt;").Replace("<", "&lt;").Replace("'", "&#39;").Replace("\"", "&#34;");
            case "format": return PercentFormat(PyStr.Str(v), args);
        }
        throw new JinjaException("template_assertion_error", $"No filter named '{name}'.");
    }

    private static object? SortKey(object? v, bool caseSensitive) => !caseSensitive && v is string s ? s.ToLowerInvariant() : v;

    /// <summary>The value of a dotted attribute path ("function.name"; integer parts index lists).</summary>
    public static object? Path(object? v, object attr)
    {
        if (attr is long i) return Interpreter.GetItem(v, i);
        foreach (var part in PyStr.Str(attr).Split('.'))
        {
            if (v is Undefined) return v;
            v = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var idx) ? Interpreter.GetItem(v, idx) : Interpreter.GetItem(v, part);
        }
        return v;
    }

    /// <summary>select/selectattr's check: the named test with its arguments, or truthiness with none.</summary>
    private static bool Check(object? v, List<object?> testAndArgs)
    {
        if (testAndArgs.Count == 0) return PyOps.Truthy(v);
        var test = testAndArgs[0] as string ?? throw JinjaException.Type("the test name must be a string");
        return Tests.Apply(test, v, testAndArgs.Skip(1).ToList(), []);
    }

    /// <summary>json.dumps keywords: indent (int or str), separators (a 2-tuple), ensure_ascii, sort_keys.</summary>
    private static string ToJson(object? v, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? A(string n, int i) => Methods.Arg(args, kwargs, i, n);
        string? indent = A("indent", 1) switch
        {
            null => null,
            long n => new string(' ', (int)Math.Max(0, n)),
            string s => s,
            var x => throw JinjaException.Type($"tojson: indent must be an int or a string, not {PyTypes.Name(x)}"),
        };
        string? item = null, key = null;
        if (A("separators", 2) is { } sep)
        {
            var parts = PyOps.Iterate(sep);
            if (parts.Count != 2 || parts[0] is not string a || parts[1] is not string b) throw JinjaException.Type("tojson: separators must be a pair of strings");
            (item, key) = (a, b);
        }
        return PyJson.Dumps(v, new JsonDumpOptions(PyOps.Truthy(A("ensure_ascii", 0)), indent, item, key, PyOps.Truthy(A("sort_keys", 3))));
    }

    private static string Indent(string s, object? width, bool first, bool blank)
    {
        string pad = width switch { long n => new string(' ', (int)n), string w => w, _ => "    " };
        var lines = s.Split('\n');
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Length; i++)
        {
            if (i > 0) sb.Append('\n');
            bool indent = (i > 0 || first) && (blank || lines[i].Trim().Length > 0);
            if (indent) sb.Append(pad);
            sb.Append(lines[i]);
        }
        return sb.ToString();
    }

    /// <summary>The format filter: printf-style %s, %d, %r, %% with positional arguments.</summary>
    private static string PercentFormat(string fmt, List<object?> args)
    {
        var sb = new StringBuilder();
        int ai = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%' || i + 1 >= fmt.Length) { sb.Append(fmt[i]); continue; }
            char c = fmt[++i];
            if (c == '%') { sb.Append('%'); continue; }
            if (ai >= args.Count) throw JinjaException.Type("not enough arguments for format string");
            var a = args[ai++];
            sb.Append(c switch
            {
                's' => PyStr.Str(a),
                'r' => PyStr.Repr(a),
                'd' or 'i' => a is double d ? ((long)Math.Truncate(d)).ToString(CultureInfo.InvariantCulture) : PyStr.Repr(a),
                _ => throw JinjaException.Runtime($"format: %{c} is not supported"),
            });
        }
        return sb.ToString();
    }
}
