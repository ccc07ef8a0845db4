// transformers' tojson filter: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
// Separators default to ", " and ": " (with an indent: "," and ": "); an indent puts each element on its own
// line; strings escape only ", \ and control characters (\n \r \t \b \f, others \u00XX), or every non-ASCII
// character too with ensure_ascii; floats print as Python's repr; NaN/inf as NaN/Infinity. Undefined and
// other non-JSON values are a type_error as in Python.
using System.Globalization;
using System.Text;

namespace PostTrain.Data.Templates.Jinja;

public sealed record JsonDumpOptions(bool EnsureAscii = false, string? Indent = null, string? ItemSeparator = null, string? KeySeparator = null, bool SortKeys = false);

public static class PyJson
{
    public static string Dumps(object? v, JsonDumpOptions o)
    {
        var sb = new StringBuilder();
        var item = o.ItemSeparator ?? (o.Indent is null ? ", " : ",");
        var key = o.KeySeparator ?? ": ";
        Write(sb, v, o, item, key, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, JsonDumpOptions o, string item, string key, int depth)
    {
        switch (v)
        {
            case null: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyStr.FloatRepr(d));
                return;
            case string s: WriteString(sb, s, o.EnsureAscii); return;
            case List<object?> l: WriteSeq(sb, l, o, item, key, depth); return;
            case PyTuple t: WriteSeq(sb, t.Items, o, item, key, depth); return;
            case PyDict d:
                if (d.Count == 0) { sb.Append("{}"); return; }
                sb.Append('{');
                var pairs = d.Select(kv => (Key: JsonKey(kv.Key), kv.Value)).ToList();
                if (o.SortKeys) pairs = [.. pairs.OrderBy(p => PyStr.Utf32Key(p.Key), StringComparer.Ordinal)];
                for (int i = 0; i < pairs.Count; i++)
                {
                    if (i > 0) sb.Append(item);
                    NewLine(sb, o, depth + 1);
                    WriteString(sb, pairs[i].Key, o.EnsureAscii);
                    sb.Append(key);
                    Write(sb, pairs[i].Value, o, item, key, depth + 1);
                }
                NewLine(sb, o, depth);
                sb.Append('}');
                return;
            default:
                throw JinjaException.Type($"Object of type {PyTypes.Name(v)} is not JSON serializable");
        }
    }

    private static void WriteSeq(StringBuilder sb, IList<object?> items, JsonDumpOptions o, string item, string key, int depth)
    {
        if (items.Count == 0) { sb.Append("[]"); return; }
        sb.Append('[');
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0) sb.Append(item);
            NewLine(sb, o, depth + 1);
            Write(sb, items[i], o, item, key, depth + 1);
        }
        NewLine(sb, o, depth);
        sb.Append(']');
    }

    private static void NewLine(StringBuilder sb, JsonDumpOptions o, int depth)
    {
        if (o.Indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < depth; i++) sb.Append(o.Indent);
    }

    private static string JsonKey(object k) => k switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => PyStr.FloatRepr(d),
        _ => throw JinjaException.Type($"keys must be str, int, float, bool or None, not {PyTypes.Name(k)}"),
    };

    private static void WriteString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
