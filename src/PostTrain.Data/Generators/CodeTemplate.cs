// One function family of the code-synthesis task: a name, a category (arithmetic, string, list, conditional), a
// difficulty level (1 = one expression, 2 = a loop or a library call, 3 = a loop with a condition or several
// branches), typed parameters, and, given the template's random constants c (0-2 small ints), the description in
// words, the reference bodies in JavaScript and C#, and a plain C# evaluator that computes the expected results of
// the hidden tests (the three are checked against each other in the sandbox by the tests).
namespace PostTrain.Data.Generators;

/// <summary>A parameter's type: int, string or int array (JSON number, string, array of numbers).</summary>
public enum CodeType { Int, Str, IntList, Bool }

public sealed record CodeParam(string Name, CodeType Type);

public sealed record CodeTemplate(
    string Name,
    string Category,
    int Level,
    IReadOnlyList<CodeParam> Params,
    CodeType Returns,
    Func<SplitMix64, int[]> Constants,
    Func<int[], string> Describe,
    Func<int[], string> JavaScriptBody,
    Func<int[], string> CSharpBody,
    Func<int[], object[], object> Evaluate,
    Func<SplitMix64, object[]> Args)
{
    /// <summary>Constants drawn from a far wider range than <see cref="Constants"/> (null: the family has none worth
    /// widening: no constants, strings, or a power that would overflow). Only the pre-training text uses them (its
    /// "wide" variant): with so many functions each one appears about once (ranges up to 99,999) or a few times (up to
    /// 999) in 300,000 rows, so a model can only lower its loss by reading the constant off the description, the skill
    /// the held-out constants need.</summary>
    public Func<SplitMix64, int[]>? WideConstants { get; init; }

    /// <summary>C# spelling of a type.</summary>
    public static string CSharpType(CodeType t) => t switch
    {
        CodeType.Int => "int",
        CodeType.Str => "string",
        CodeType.IntList => "int[]",
        _ => "bool",
    };

    /// <summary>The C# method name: the JavaScript name with its first letter upper-cased.</summary>
    public string CSharpName => char.ToUpperInvariant(Name[0]) + Name[1..];

    public string JavaScriptSignature => $"{Name}({string.Join(", ", Params.Select(p => p.Name))})";

    public string CSharpSignature =>
        $"static {CSharpType(Returns)} {CSharpName}({string.Join(", ", Params.Select(p => $"{CSharpType(p.Type)} {p.Name}"))})";

    public string JavaScriptSource(int[] c) => $"function {JavaScriptSignature} {{\n{Indent(JavaScriptBody(c))}\n}}";

    public string CSharpSource(int[] c) => $"{CSharpSignature}\n{{\n{Indent(CSharpBody(c))}\n}}";

    private static string Indent(string body) => string.Join("\n", body.Split('\n').Select(l => "    " + l));
}
