// Preference pairs from arithmetic problems: chosen = the correct solution, rejected = the same solution
// with a wrong result in its last step (off by 1, 2 or 10) carried into the boxed answer.
namespace PostTrain.Data.Generators;

public sealed record PreferencePair(string Prompt, string Chosen, string Rejected, int Answer, string Category);

public static class PreferenceGenerator
{
    private static readonly int[] Offsets = [-10, -2, -1, 1, 2, 10];

    public static List<PreferencePair> Generate(int count, ulong seed, IReadOnlySet<string>? excludePrompts = null)
    {
        var rng = new SplitMix64(seed ^ 0x5EED);
        return [.. ArithmeticGenerator.Generate(count, seed, excludePrompts).Select(p => Pair(p, rng))];
    }

    private static PreferencePair Pair(ArithmeticProblem p, SplitMix64 rng)
    {
        int wrong;
        do wrong = p.Answer + rng.Pick(Offsets);
        while (wrong < 0);
        var lines = p.Completion.Split('\n');
        var lastEquation = lines[^2];
        lines[^2] = lastEquation[..(lastEquation.LastIndexOf("= ", StringComparison.Ordinal) + 2)] + wrong;
        lines[^1] = ArithmeticGenerator.Final(wrong);
        return new PreferencePair(p.Prompt, p.Completion, string.Join('\n', lines), p.Answer, p.Category);
    }
}
