// A reward's options as given in a recipe (`options: {think_open: "<think>"}`), read with types.
// Values may arrive as YAML strings ("0.5", "true"), JSON elements or plain .NET values; each getter accepts all three.
// Every key must be read by the reward's constructor: EnsureAllUsed() turns a misspelt key into an error that names the
// reward and suggests the closest known key.
using System.Globalization;
using System.Text.Json;

namespace PostTrain.Rewards;

public sealed class RewardOptions
{
    private readonly IReadOnlyDictionary<string, object?> _values;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    public RewardOptions(string rewardName, IReadOnlyDictionary<string, object?>? values)
    {
        RewardName = rewardName;
        _values = values ?? RewardInput.NoColumns;
    }

    public string RewardName { get; }

    /// <summary>The raw options (plugins receive them as they are).</summary>
    public IReadOnlyDictionary<string, object?> Values => _values;

    public string String(string key, string fallback) => StringOrNull(key) ?? fallback;

    public string? StringOrNull(string key)
    {
        var v = Raw(key);
        return v switch
        {
            null => null,
            string s => s,
            JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
            JsonElement { ValueKind: JsonValueKind.Null } => null,
            JsonElement e => throw Bad(key, e.ValueKind.ToString(), "a string"),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => throw Bad(key, v.GetType().Name, "a string"),
        };
    }

    public double Double(string key, double fallback) => DoubleOrNull(key) ?? fallback;

    public double? DoubleOrNull(string key)
    {
        var v = Raw(key);
        double? d = v switch
        {
            null => null,
            double x => x,
            float x => x,
            int x => x,
            long x => x,
            decimal x => (double)x,
            string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) => x,
            JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
            JsonElement { ValueKind: JsonValueKind.String } e when double.TryParse(e.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var x) => x,
            JsonElement { ValueKind: JsonValueKind.Null } => null,
            _ => throw Bad(key, Describe(v), "a number"),
        };
        if (d is { } r && !double.IsFinite(r)) throw Bad(key, Describe(v), "a finite number");
        return d;
    }

    public int Int(string key, int fallback)
    {
        var d = DoubleOrNull(key);
        if (d is null) return fallback;
        if (d != System.Math.Floor(d.Value) || d < int.MinValue || d > int.MaxValue) throw Bad(key, Describe(Raw(key)), "an integer");
        return (int)d.Value;
    }

    public bool Bool(string key, bool fallback)
    {
        var v = Raw(key);
        return v switch
        {
            null => fallback,
            bool b => b,
            string s when bool.TryParse(s, out var b) => b,
            JsonElement { ValueKind: JsonValueKind.True } => true,
            JsonElement { ValueKind: JsonValueKind.False } => false,
            _ => throw Bad(key, Describe(v), "true or false"),
        };
    }

    /// <summary>A list of strings (a YAML/JSON list); null when absent.</summary>
    public IReadOnlyList<string>? StringList(string key)
    {
        var v = Raw(key);
        switch (v)
        {
            case null:
                return null;
            case string:
                throw Bad(key, "a single string", "a list of strings");
            case JsonElement { ValueKind: JsonValueKind.Array } e:
                return e.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw Bad(key, "a list holding " + x.ValueKind, "a list of strings")).ToList();
            case System.Collections.IEnumerable items:
                return items.Cast<object?>().Select(x => x as string ?? throw Bad(key, "a list holding " + Describe(x), "a list of strings")).ToList();
            default:
                throw Bad(key, Describe(v), "a list of strings");
        }
    }

    /// <summary>Declares a key the reward understands without reading it here (e.g. options passed on to a plugin).</summary>
    public void Accept(string key) => _known.Add(key);

    /// <summary>Throws when the recipe gave a key that no getter asked for (a typo), suggesting the closest known key.</summary>
    public void EnsureAllUsed()
    {
        foreach (var key in _values.Keys)
        {
            if (_known.Contains(key)) continue;
            var hint = NameSuggester.Closest(key, _known);
            throw new RewardConfigException($"reward '{RewardName}': unknown option '{key}'"
                + (hint is null ? "" : $"; did you mean '{hint}'?")
                + (_known.Count == 0 ? " (this reward takes no options)" : $" (known: {string.Join(", ", _known.Order())})"));
        }
    }

    private object? Raw(string key)
    {
        _known.Add(key);
        return _values.TryGetValue(key, out var v) ? v : null;
    }

    private RewardConfigException Bad(string key, string got, string expected) =>
        new($"reward '{RewardName}': option '{key}' must be {expected}, got {got}");

    private static string Describe(object? v) => v switch
    {
        null => "null",
        string s => $"\"{s}\"",
        JsonElement e => e.GetRawText(),
        _ => v.GetType().Name,
    };
}
