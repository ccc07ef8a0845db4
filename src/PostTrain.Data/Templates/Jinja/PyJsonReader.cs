// JSON text to template values, keeping object key order (templates depend on it for tojson and items()):
// objects become PyDict, arrays List, integers long (double when they do not fit), other numbers double.
using System.Text.Json;

namespace PostTrain.Data.Templates.Jinja;

public static class PyJsonReader
{
    public static object? Parse(string json) => FromElement(JsonDocument.Parse(json).RootElement);

    public static object? FromElement(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => IsInteger(e.GetRawText()) && e.TryGetInt64(out var l) ? l : (object)e.GetDouble(),
        JsonValueKind.Array => e.EnumerateArray().Select(FromElement).ToList(),
        JsonValueKind.Object => Object(e),
        _ => throw new JsonException($"unsupported JSON value {e.ValueKind}"),
    };

    private static bool IsInteger(string raw) => !raw.Contains('.') && !raw.Contains('e') && !raw.Contains('E');

    private static PyDict Object(JsonElement e)
    {
        var d = new PyDict();
        foreach (var p in e.EnumerateObject()) d[p.Name] = FromElement(p.Value);
        return d;
    }
}
