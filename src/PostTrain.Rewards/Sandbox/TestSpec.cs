// The `tests` column: which function to call (or none, for a stdin/stdout program), the cases and how to score.
// Format (README.md in this folder):
//   {"entry":"solve","cases":[{"args":[1,2],"expected":3}], "scoring":"fraction"|"all", "tolerance":1e-6}
//   {"cases":[{"stdin":"1 2\n","stdout":"3\n"}]}
// Parse errors name the key and the case index.
using System.Text.Json;

namespace PostTrain.Rewards.Sandbox;

/// <summary>One case: JSON arguments and expected JSON result (function mode), or stdin and expected stdout.</summary>
public sealed record TestCase(string? ArgsJson, string? ExpectedJson, string? Stdin, string? Stdout);

public sealed record TestSpec(string? Entry, IReadOnlyList<TestCase> Cases, bool AllOrNothing = false, double Tolerance = 1e-6,
    string? Language = null)
{
    public const int MaxCases = 1000;

    public bool IsFunctionMode => Entry is not null;

    /// <summary>Parses the `tests` column. <paramref name="source"/> names the column/row in errors.</summary>
    public static TestSpec Parse(string json, string source = "tests")
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new FormatException($"{source}: not valid JSON ({e.Message})", e); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"{source}: expected a JSON object");
            foreach (var property in root.EnumerateObject())
                if (property.Name is not ("language" or "entry" or "cases" or "scoring" or "tolerance"))
                    throw new FormatException($"{source}: unknown key '{property.Name}'");

            var entry = OptionalString(root, "entry", source);
            if (entry is not null && !IsEntryName(entry))
                throw new FormatException($"{source}: 'entry' must be a name like solve or Solution.solve, got '{entry}'");
            var scoring = OptionalString(root, "scoring", source) ?? "fraction";
            if (scoring is not ("fraction" or "all"))
                throw new FormatException($"{source}: 'scoring' must be \"fraction\" or \"all\", got '{scoring}'");
            var tolerance = 1e-6;
            if (root.TryGetProperty("tolerance", out var tol))
                tolerance = tol.ValueKind == JsonValueKind.Number && tol.GetDouble() >= 0
                    ? tol.GetDouble() : throw new FormatException($"{source}: 'tolerance' must be a non-negative number");
            if (!root.TryGetProperty("cases", out var casesElement) || casesElement.ValueKind != JsonValueKind.Array)
                throw new FormatException($"{source}: 'cases' must be an array");
            var cases = new List<TestCase>();
            foreach (var c in casesElement.EnumerateArray())
                cases.Add(ParseCase(c, entry is not null, $"{source}: cases[{cases.Count}]"));
            if (cases.Count == 0) throw new FormatException($"{source}: 'cases' is empty");
            if (cases.Count > MaxCases) throw new FormatException($"{source}: more than {MaxCases} cases");
            return new TestSpec(entry, cases, scoring == "all", tolerance, OptionalString(root, "language", source));
        }
    }

    internal static bool IsEntryName(string entry) =>
        entry.Length is > 0 and <= 128 && entry.Split('.') is { Length: <= 2 } parts && parts.All(IsIdentifier);

    private static bool IsIdentifier(string s) => s.Length > 0 && (char.IsLetter(s[0]) || s[0] is '_' or '$')
        && s.All(ch => char.IsLetterOrDigit(ch) || ch is '_' or '$');

    private static TestCase ParseCase(JsonElement c, bool functionMode, string where)
    {
        if (c.ValueKind != JsonValueKind.Object) throw new FormatException($"{where}: expected an object");
        foreach (var property in c.EnumerateObject())
            if (property.Name is not ("args" or "expected" or "stdin" or "stdout"))
                throw new FormatException($"{where}: unknown key '{property.Name}'");
        if (functionMode)
        {
            if (!c.TryGetProperty("args", out var args) || args.ValueKind != JsonValueKind.Array)
                throw new FormatException($"{where}: 'args' must be an array (the spec has an 'entry')");
            if (!c.TryGetProperty("expected", out var expected))
                throw new FormatException($"{where}: 'expected' is missing");
            return new TestCase(args.GetRawText(), expected.GetRawText(), null, null);
        }
        if (c.TryGetProperty("args", out _)) throw new FormatException($"{where}: 'args' needs an 'entry' in the spec");
        return new TestCase(null, null, OptionalString(c, "stdin", where) ?? "",
            OptionalString(c, "stdout", where) ?? throw new FormatException($"{where}: 'stdout' is missing"));
    }

    private static string? OptionalString(JsonElement e, string key, string where) =>
        !e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw new FormatException($"{where}: '{key}' must be a string");
}
