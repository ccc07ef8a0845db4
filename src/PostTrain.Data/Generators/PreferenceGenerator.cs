// Preference pairs from arithmetic problems, in two kinds:
//   Form (the shipped datasets/preferences): chosen = the worked solution, equation lines then
//     "The answer is \boxed{N}."; rejected = the same problem answered badly in one of five ways (Flaws), always
//     with the right number where a number is given, so the preference is about form, as in DeepSeek-V3's reward
//     model for well-formed, step-by-step, boxed answers:
//       unboxed     the same steps, final line without \boxed{} ("The answer is N.")
//       unfinished  stops inside the work: the first equation without its result, no final line
//       bare        no steps, just the number
//       rambling    filler sentences around the steps, an unboxed guess at the end
//       sloppy      steps squashed and lower-case, no final sentence ("19-14=5 so 5")
//   WrongResult (datasets/preferences-hard): chosen = the worked solution, rejected = the same solution with a
//     wrong result (off by 1, 2 or 10) in its last step carried into the boxed answer. Telling them apart needs the
//     arithmetic itself, which a few-million-parameter model barely has (a reward model stays near 50% on these).
namespace PostTrain.Data.Generators;

public sealed record PreferencePair(string Prompt, string Chosen, string Rejected, int Answer, string Category, string Flaw);

public enum PreferenceKind { Form, WrongResult }

public static class PreferenceGenerator
{
    /// <summary>The flaws of a Form pair's rejected answer, used in turn (pair i has Flaws[i % 5]).</summary>
    public static readonly string[] Flaws = ["unboxed", "unfinished", "bare", "rambling", "sloppy"];

    private static readonly int[] Offsets = [-10, -2, -1, 1, 2, 10];
    private static readonly string[] Fillers =
    [
        "Hmm, let me think about this.", "Okay so there are some numbers here.", "This is a tricky one maybe.",
        "Let me see what the question wants.", "I am not totally sure but let me try.", "Numbers are fun to add up.",
    ];

    public static List<PreferencePair> Generate(int count, ulong seed, IReadOnlySet<string>? excludePrompts = null,
        PreferenceKind kind = PreferenceKind.Form)
    {
        var rng = new SplitMix64(seed ^ 0x5EED);
        var problems = ArithmeticGenerator.Generate(count, seed, excludePrompts);
        return [.. problems.Select((p, i) => kind == PreferenceKind.Form ? FormPair(p, Flaws[i % Flaws.Length], rng) : WrongResultPair(p, rng))];
    }

    private static PreferencePair FormPair(ArithmeticProblem p, string flaw, SplitMix64 rng)
    {
        var steps = p.Completion.Split('\n')[..^1];            // the equation lines, "a op b = c"
        var rejected = flaw switch
        {
            "unboxed" => string.Join('\n', [.. steps, $"The answer is {p.Answer}."]),
            "unfinished" => steps[0][..(steps[0].LastIndexOf('=') + 1)],
            "bare" => p.Answer.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "rambling" => $"{rng.Pick(Fillers)} {rng.Pick(Fillers)}\n{string.Join('\n', steps)}\n{rng.Pick(Fillers)} I think it is {p.Answer} or so.",
            "sloppy" => string.Join(' ', steps.Select(s => s.Replace(" ", ""))) + $" so {p.Answer}",
            _ => throw new ArgumentException($"unknown flaw '{flaw}'"),
        };
        return new PreferencePair(p.Prompt, p.Completion, rejected, p.Answer, p.Category, flaw);
    }

    private static PreferencePair WrongResultPair(ArithmeticProblem p, SplitMix64 rng)
    {
        int wrong;
        do wrong = p.Answer + rng.Pick(Offsets);
        while (wrong < 0);
        var lines = p.Completion.Split('\n');
        var lastEquation = lines[^2];
        lines[^2] = lastEquation[..(lastEquation.LastIndexOf("= ", StringComparison.Ordinal) + 2)] + wrong;
        lines[^1] = ArithmeticGenerator.Final(wrong);
        return new PreferencePair(p.Prompt, p.Completion, string.Join('\n', lines), p.Answer, p.Category, "wrong_result");
    }
}
