// Reads a JSONL file of reward cases: one JSON object per line with string fields "prompt" and "completion"; every
// other field is passed through as a column (converted to plain .NET values: string, long, double, bool, null,
// List<object?>, Dictionary<string, object?>). Blank lines are skipped. Errors name the file and line.
using System.Text.Json;

namespace PostTrain.Rewards.Commands;

public sealed record RewardCase(int Line, RewardInput Input);

public static class RewardCases
{
    public static IReadOnlyList<RewardCase> Read(string path)
    {
        if (!File.Exists(path)) throw new RewardConfigException($"{path}: file not found");
        var cases = new List<RewardCase>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            cases.Add(new RewardCase(lineNumber, Parse(line, path, lineNumber)));
        }
        if (cases.Count == 0) throw new RewardConfigException($"{path}: no cases (expected one JSON object per line)");
        return cases;
    }

    private static RewardInput Parse(string line, string path, int lineNumber)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new RewardConfigException($"{path}:{lineNumber}: invalid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new RewardConfigException($"{path}:{lineNumber}: expected a JSON object, got {doc.RootElement.ValueKind}");
            string? prompt = null, completion = null;
            var columns = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "prompt": prompt = Text(p, path, lineNumber); break;
                    case "completion": completion = Text(p, path, lineNumber); break;
                    default: columns[p.Name] = Plain(p.Value); break;
                }
            }
            return new RewardInput(
                prompt ?? throw new RewardConfigException($"{path}:{lineNumber}: missing field 'prompt'"),
                completion ?? throw new RewardConfigException($"{path}:{lineNumber}: missing field 'completion'"),
                columns);
        }
    }

    private static string Text(JsonProperty p, string path, int lineNumber) => p.Value.ValueKind == JsonValueKind.String
        ? p.Value.GetString()!
        : throw new RewardConfigException($"{path}:{lineNumber}: field '{p.Name}' must be a string, got {p.Value.ValueKind}");

    /// <summary>A JSON value as a plain .NET value (what rewards and plugins expect in Columns).</summary>
    public static object? Plain(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => e.EnumerateArray().Select(Plain).ToList(),
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => Plain(p.Value), StringComparer.Ordinal),
        _ => null,
    };
}
