// Turns a parsed JSON value into the plain .NET values DataRow uses: string, long (integral numbers),
// double (other numbers), bool, null, List<object?> and Dictionary<string, object?> (in key order).
using System.Text.Json;

namespace PostTrain.Data.Readers;

internal static class JsonValues
{
    public static object? ToObject(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? (object)l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.Array => e.EnumerateArray().Select(ToObject).ToList(),
        JsonValueKind.Object => ToDictionary(e),
        _ => throw new InvalidOperationException($"unexpected JSON value kind {e.ValueKind}"),
    };

    private static Dictionary<string, object?> ToDictionary(JsonElement e)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject()) d[p.Name] = ToObject(p.Value);
        return d;
    }
}
