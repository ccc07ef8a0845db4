// Code-synthesis tasks (datasets/code): "write a function that <words>", one or two worked examples, and 5 hidden test
// cases in the sandbox's `tests` format (function mode) for the `code` reward and the `code` eval checker; the reference
// solution, fenced, is the SFT completion. A function is a family (CodeTemplates) with its constants. Three splits,
// each function in exactly one: test holds every function of the TestOnly families ("new family") and, in the other
// families, those whose (family, constants) key hashes to the held-out quarter ("new constants"); rl holds the functions
// of the next quarter (prompts for reinforcement learning whose constants SFT and pre-training never show, so the
// policy is rewarded for reading a function off its description, the skill the test's new constants need); train holds
// the rest (every function of a family without constants, half of the constants of the others).
// Expected values come from the families' plain C# evaluators, never from running the reference code.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace PostTrain.Data.Generators;

/// <summary>One task row. <see cref="Category"/> is "language/category" (e.g. "csharp/list") for the per-category
/// report; <see cref="Function"/> is the family with its constants ("addConst(7)"); <see cref="HeldOut"/> is "" in
/// train, "family" or "constants" in test, "constants" in rl.</summary>
public sealed record CodeTask(string Prompt, string Completion, string Tests, string Language, string Category,
    string Family, string Function, int Level, string HeldOut);

/// <summary>The three disjoint sets of functions (see the file header).</summary>
public enum CodeSplit { Train, Rl, Test }

public static class CodeTaskGenerator
{
    public const int HiddenCases = 5;
    public static readonly IReadOnlyList<string> Languages = ["javascript", "csharp"];

    /// <summary><paramref name="count"/> distinct tasks of <paramref name="split"/>'s functions, languages alternating,
    /// families uniform among those the split has. wide: constants from the families' <see cref="CodeTemplate.WideConstants"/>
    /// where they have them (pre-training text only; the split rule still decides which functions may appear).
    /// wideCap: a wide constant whose magnitude passes it is drawn again, sign kept, with 1 to digits(wideCap) digits
    /// equally likely (<see cref="CapMagnitude"/>), so the text keeps the rl and test rows' constant lengths.</summary>
    public static List<CodeTask> Generate(int count, ulong seed, CodeSplit split, IReadOnlySet<string>? excludePrompts = null, bool wide = false,
        int? wideCap = null)
    {
        if (wideCap is < 9) throw new ArgumentOutOfRangeException(nameof(wideCap), wideCap, "the wide-constant cap is at least 9");
        var rng = new SplitMix64(seed);
        var seen = new HashSet<string>(excludePrompts ?? new HashSet<string>());
        var families = CodeTemplates.All.Where(t => split switch
        {
            CodeSplit.Train => !CodeTemplates.TestOnly.Contains(t.Name),
            CodeSplit.Rl => !CodeTemplates.TestOnly.Contains(t.Name) && t.Constants(new SplitMix64(0)).Length > 0,
            _ => true,
        }).ToList();
        var tasks = new List<CodeTask>(count);
        for (int attempt = 0; tasks.Count < count; attempt++)
        {
            if (attempt > count * 200) throw new InvalidOperationException($"code tasks: only {tasks.Count} distinct of {count} found");
            var template = rng.Pick(families);
            var constants = wide && template.WideConstants is { } w ? w(rng) : template.Constants(rng);
            if (wide && wideCap is int cap && template.WideConstants is not null)
                constants = constants.Select(c => Math.Abs(c) > cap ? Math.Sign(c) * CapMagnitude(rng, cap) : c).ToArray();
            if (SplitOf(template, constants) != split) continue;
            var task = One(rng, template, constants, Languages[tasks.Count % Languages.Count], HeldOutKind(template, constants) ?? "");
            if (task is not null && seen.Add(task.Prompt)) tasks.Add(task);
        }
        return tasks;
    }

    /// <summary>A magnitude in [1, cap] whose digit count is uniform over 1 .. digits(cap), then uniform within it
    /// (for cap 999: 1-9, 10-99, 100-999 a third each).</summary>
    public static int CapMagnitude(SplitMix64 rng, int cap)
    {
        int digits = cap.ToString(CultureInfo.InvariantCulture).Length;
        int d = rng.Next(1, digits);
        int lo = d == 1 ? 1 : (int)Math.Pow(10, d - 1);
        return rng.Next(lo, Math.Min(cap, (int)Math.Pow(10, d) - 1));
    }

    /// <summary>The split a function belongs to.</summary>
    public static CodeSplit SplitOf(CodeTemplate template, int[] constants)
    {
        if (CodeTemplates.TestOnly.Contains(template.Name)) return CodeSplit.Test;
        if (constants.Length == 0) return CodeSplit.Train;
        return (Fnv1a(FunctionKey(template.Name, constants)) % 4) switch { 0 => CodeSplit.Test, 1 => CodeSplit.Rl, _ => CodeSplit.Train };
    }

    /// <summary>"family" (a TestOnly family) or "constants" (a function of a trained family with constants that train
    /// never shows: the test's and rl's), else null (a training function).</summary>
    public static string? HeldOutKind(CodeTemplate template, int[] constants) =>
        CodeTemplates.TestOnly.Contains(template.Name) ? "family" : SplitOf(template, constants) == CodeSplit.Train ? null : "constants";

    /// <summary>The opening of a task's prompt: "Write a JavaScript function `signature` that " (C# alike).</summary>
    internal static string Ask(bool js, string signature) => $"Write a {(js ? "JavaScript" : "C#")} function `{signature}` that ";

    /// <summary>A function's source as the answer a task expects: in a ```js or ```csharp block.</summary>
    internal static string Fenced(bool js, string source) => js ? $"```js\n{source}\n```" : $"```csharp\n{source}\n```";

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
            .Append(Ask(js, js ? template.JavaScriptSignature : template.CSharpSignature))
            .Append(template.Describe(constants)).Append(".\n")
            .Append(examples == 1 ? "Example: " : "Examples: ").Append(string.Join("; ", shown)).Append(".\n")
            .Append($"Answer with the function in a ```{(js ? "js" : "csharp")} code block.")
            .ToString();
        var cases = args.Skip(examples).Select(a => new Dictionary<string, object> { ["args"] = a, ["expected"] = template.Evaluate(constants, a) });
        var tests = Json(new Dictionary<string, object> { ["language"] = language, ["entry"] = name, ["cases"] = cases.ToList() });
        var completion = Fenced(js, js ? template.JavaScriptSource(constants) : template.CSharpSource(constants));
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
