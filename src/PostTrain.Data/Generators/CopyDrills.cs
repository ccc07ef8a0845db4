// Copy drills for pre-training a small code base model: short rows whose completion repeats part of the prompt
// verbatim (a random string, a list of numbers, or a function returning a given constant). Code text alone asks for a
// copy at a few positions per row (the constants), too weak a signal for a 4-layer byte model to learn copying in
// ~100 M tokens (attempts 1-4 of the code pipeline); on drills alone the same model copies after ~100 steps (CPU,
// 2026-12-05), and then reading a constant off a description is a skill it has. Deterministic (SplitMix64).
using System.Globalization;

namespace PostTrain.Data.Generators;

public static class CopyDrills
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    private static readonly string[] Stems = ["f", "g", "h", "calc", "value", "pick", "make", "get"];

    /// <summary><paramref name="count"/> drills (prompt, completion), kinds mixed 4 : 3 : 3 (text, numbers, function).
    /// numberCap: numbers up to that magnitude, digit counts equally likely (CodeTaskGenerator.CapMagnitude); without it
    /// uniform in [-99,999, 99,999].</summary>
    public static List<(string Prompt, string Completion)> Generate(int count, ulong seed, int? numberCap = null)
    {
        var rng = new SplitMix64(seed);
        var drills = new List<(string, string)>(count);
        for (int i = 0; i < count; i++) drills.Add(One(rng, numberCap));
        return drills;
    }

    /// <summary>One drill.</summary>
    public static (string Prompt, string Completion) One(SplitMix64 rng, int? numberCap = null)
    {
        string Number() => (numberCap is int cap
            ? (rng.Next(0, 1) == 0 ? -1 : 1) * CodeTaskGenerator.CapMagnitude(rng, cap)
            : rng.Next(-99_999, 99_999)).ToString(CultureInfo.InvariantCulture);
        int kind = rng.Next(0, 9);
        if (kind < 4)
        {
            var s = Text(rng, rng.Next(6, 40));
            return ($"Copy this text exactly: {s}\n", s);
        }
        if (kind < 7)
        {
            var nums = string.Join(", ", Enumerable.Range(0, rng.Next(1, 4)).Select(_ => Number()));
            return ($"Repeat the numbers: {nums}\n", nums);
        }
        string stem = rng.Pick(Stems), tail = Text(rng, rng.Next(1, 5));
        string name = stem + char.ToUpperInvariant(tail[0]) + tail[1..];
        string c = Number();
        bool js = rng.Next(0, 1) == 0;   // a coin flip (Next's bounds are inclusive)
        if (!js) name = char.ToUpperInvariant(name[0]) + name[1..];   // C# method names, as the code tasks write them
        string body = js ? $"function {name}() {{\n    return {c};\n}}" : $"static int {name}()\n{{\n    return {c};\n}}";
        return ($"{CodeTaskGenerator.Ask(js, js ? $"{name}()" : $"static int {name}()")}returns {c}.\n", CodeTaskGenerator.Fenced(js, body));
    }

    private static string Text(SplitMix64 rng, int length) =>
        string.Concat(Enumerable.Range(0, length).Select(_ => Alphabet[rng.Next(0, Alphabet.Length - 1)]));
}
