// Decides Accepted vs WrongAnswer for a program that ran to completion.
// Function mode: JSON structural equality; numbers equal when both are integers with the same value, else within
// `tolerance` relative (absolute below 1); objects compare as key sets (order ignored), arrays in order.
// Stdio mode: equal after normalising line ends to \n, trimming trailing spaces on each line and trailing blank
// lines (what most judges call "ignore trailing whitespace").
using System.Globalization;
using System.Text.Json;

namespace PostTrain.Rewards.Sandbox;

internal static class OutputComparer
{
    public static bool JsonEquals(string actualJson, string expectedJson, double tolerance)
    {
        try
        {
            using var actual = JsonDocument.Parse(actualJson, new JsonDocumentOptions { MaxDepth = 256 });
            using var expected = JsonDocument.Parse(expectedJson, new JsonDocumentOptions { MaxDepth = 256 });
            return Equal(actual.RootElement, expected.RootElement, tolerance);
        }
        catch (JsonException) { return false; }
    }

    public static bool StdoutEquals(string actual, string expected) => Normalize(actual) == Normalize(expected);

    private static bool Equal(JsonElement a, JsonElement b, double tolerance)
    {
        if (a.ValueKind != b.ValueKind)
            return false;
        switch (a.ValueKind)
        {
            case JsonValueKind.Number:
                if (a.TryGetInt64(out var ai) && b.TryGetInt64(out var bi)) return ai == bi;
                if (decimal.TryParse(a.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ad)
                    && decimal.TryParse(b.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture, out var bd) && ad == bd)
                    return true;
                var x = a.GetDouble();
                var y = b.GetDouble();
                return System.Math.Abs(x - y) <= tolerance * System.Math.Max(1, System.Math.Max(System.Math.Abs(x), System.Math.Abs(y)));
            case JsonValueKind.String:
                return a.GetString() == b.GetString();
            case JsonValueKind.Array:
                if (a.GetArrayLength() != b.GetArrayLength()) return false;
                using (var ea = a.EnumerateArray().GetEnumerator())
                using (var eb = b.EnumerateArray().GetEnumerator())
                    while (ea.MoveNext() && eb.MoveNext())
                        if (!Equal(ea.Current, eb.Current, tolerance)) return false;
                return true;
            case JsonValueKind.Object:
                var pa = a.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
                var pb = b.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
                return pa.Count == pb.Count && pa.All(kv => pb.TryGetValue(kv.Key, out var v) && Equal(kv.Value, v, tolerance));
            default:
                return true; // true, false, null: same kind is equal
        }
    }

    private static string Normalize(string text)
    {
        var lines = text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n').Select(l => l.TrimEnd()).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return string.Join('\n', lines);
    }
}
