// Code-synthesis tasks (datasets/code): "write a function that <words>", one or two worked examples, and 5 hidden test
// cases in the sandbox's `tests` format (function mode) for the `code` reward and the `code` eval checker; the reference
// solution, fenced, is the SFT completion. A function is a family (CodeTemplates) with its constants; the test split
// holds only functions the training split never shows: every function of the TestOnly families ("new family") and,
// in the other families, those whose (family, constants) key hashes to the held-out quarter ("new constants").
// Expected values come from the families' plain C# evaluators, never from running the reference code.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace PostTrain.Data.Generators;

/// <summary>One task row. <see cref="Category"/> is "language/category" (e.g. "csharp/list") for the per-category
/// report; <see cref="Function"/> is the family with its constants ("addConst(7)"); <see cref="HeldOut"/> is "" in
/// train, "family" or "constants" in test.</summary>
public sealed record CodeTask(string Prompt, string Completion, string Tests, string Language, string Category,
    string Family, string Function, int Level, string HeldOut);

public static class CodeTaskGenerator
{
    public const int HiddenCases = 5;
    public static readonly IReadOnlyList<string> Languages = ["javascript", "csharp"];

    /// <summary><paramref name="count"/> distinct tasks, languages alternating, families uniform; train = false draws
    /// only held-out functions, train = true only the others.</summary>
    public static List<CodeTask> Generate(int count, ulong seed, bool train, IReadOnlySet<string>? excludePrompts = null)
    {
        var rng = new SplitMix64(seed);
        var seen = new HashSet<string>(excludePrompts ?? new HashSet<string>());
        var families = CodeTemplates.All.Where(t => !train || !CodeTemplates.TestOnly.Contains(t.Name)).ToList();
        var tasks = new List<CodeTask>(count);
        for (int attempt = 0; tasks.Count < count; attempt++)
        {
            if (attempt > count * 200) throw new InvalidOperationException($"code tasks: only {tasks.Count} distinct of {count} found");
            var template = rng.Pick(families);
            var constants = template.Constants(rng);
            var heldOut = HeldOutKind(template, constants);
            if ((heldOut is null) != train) continue;
            var task = One(rng, template, constants, Languages[tasks.Count % Languages.Count], heldOut ?? "");
            if (task is not null && seen.Add(task.Prompt)) tasks.Add(task);
        }
        return tasks;
    }

    /// <summary>"family" or "constants" when this function belongs to the test split only, else null.</summary>
    public static string? HeldOutKind(CodeTemplate template, int[] constants)
    {
        if (CodeTemplates.TestOnly.Contains(template.Name)) return "family";
        if (constants.Length == 0) return null;
        return Fnv1a(FunctionKey(template.Name, constants)) % 4 == 0 ? "constants" : null;
    }

    public static string FunctionKey(string family, int[] constants) =>
        family + "(" + string.Join(",", constants.Select(c => c.ToString(CultureInfo.InvariantCulture))) + ")";

    /// <summary>One task, or null when the family's argument space gave too few distinct cases.</summary>
    public static CodeTask? One(SplitMix64 rng, CodeTemplate template, int[] constants, string language, string heldOut)
    {
        int examples = rng.Next(1, 2);
        var args = new List<object[]>();
        var keys = new HashSet<string>();
        for (int tries = 0; args.Count < examples + HiddenCases && tries < 100; tries++)
        {
            var a = template.Args(rng);
            if (keys.Add(Json(a))) args.Add(a);
        }
        if (args.Count < examples + 3) return null;
        bool js = language == "javascript";
        string name = js ? template.Name : template.CSharpName;
        string Call(object[] a) => $"{name}({string.Join(", ", a.Select(Literal))})";
        var shown = args.Take(examples).Select(a => $"{Call(a)} returns {Literal(template.Evaluate(constants, a))}").ToList();
        var prompt = new StringBuilder()
            .Append($"Write a {(js ? "JavaScript" : "C#")} function `{(js ? template.JavaScriptSignature : template.CSharpSignature)}` that ")
            .Append(template.Describe(constants)).Append(".\n")
            .Append(examples == 1 ? "Example: " : "Examples: ").Append(string.Join("; ", shown)).Append(".\n")
            .Append($"Answer with the function in a ```{(js ? "js" : "csharp")} code block.")
            .ToString();
        var cases = args.Skip(examples).Select(a => new Dictionary<string, object> { ["args"] = a, ["expected"] = template.Evaluate(constants, a) });
        var tests = Json(new Dictionary<string, object> { ["language"] = language, ["entry"] = name, ["cases"] = cases.ToList() });
        var completion = js ? $"```js\n{template.JavaScriptSource(constants)}\n```" : $"```csharp\n{template.CSharpSource(constants)}\n```";
        return new CodeTask(prompt, completion, tests, language, $"{language}/{template.Category}", template.Name,
            FunctionKey(template.Name, constants), template.Level, heldOut);
    }

    /// <summary>A value as JavaScript and JSON write it: 3, "ab", [1, 2], true.</summary>
    public static string Literal(object value) => value switch
    {
        int i => i.ToString(CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        string s => JsonSerializer.Serialize(s),
        int[] xs => "[" + string.Join(", ", xs.Select(x => x.ToString(CultureInfo.InvariantCulture))) + "]",
        _ => throw new ArgumentException($"code task value of unsupported type {value.GetType().Name}"),
    };

    private static string Json(object value) => JsonSerializer.Serialize(value);

    private static uint Fnv1a(string text)
    {
        uint h = 2166136261;
        foreach (var ch in text) h = (h ^ ch) * 16777619;
        return h;
    }
}
