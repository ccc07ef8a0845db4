// From one answer string (gold or extracted prediction) to its possible readings: unwraps \boxed{},
// recognises multiple-choice letters and text answers, cleans LaTeX, and parses. Ambiguous forms give
// several readings and a comparison succeeds if any pair matches:
// - "3,5" (one comma, not a thousands group): the decimal 3.5 or the list 3, 5. "1,000" is always 1000.
// - "1 \pm \sqrt 2" is the list of both values.
// When the whole answer does not parse but contains "=", the part after the last "=" is tried.
using System.Text.RegularExpressions;

namespace PostTrain.Rewards.Math;

internal sealed record ParsedAnswer(string Cleaned, IReadOnlyList<Node> Readings);

internal static partial class AnswerParser
{
    /// <summary>Readings of an answer. With <paramref name="extractIfNeeded"/>, an answer that does not parse
    /// as a whole (a sentence, a solution) is read through the completion extractor instead.</summary>
    public static ParsedAnswer Parse(string answer, MathCheckOptions options, Budget budget, bool extractIfNeeded = false)
    {
        var parsed = ParseWhole(answer, options, budget);
        if (parsed.Readings.Count > 0 || !extractIfNeeded) return parsed;
        var extracted = AnswerExtractor.Extract(answer, options with { FallbackToLastNumber = false }, budget);
        if (extracted is null || extracted == answer) return parsed;
        var again = ParseWhole(extracted, options, budget);
        return again.Readings.Count > 0 ? again : parsed;
    }

    private static ParsedAnswer ParseWhole(string answer, MathCheckOptions options, Budget budget)
    {
        if (answer.Length > Budget.MaxInputLength) throw new MathTooComplexException("answer too long");
        var text = answer.Contains(@"\boxed", StringComparison.Ordinal) || answer.Contains(@"\fbox", StringComparison.Ordinal)
            ? BoxedExtractor.Extract(answer) ?? answer
            : answer;
        if (ChoiceLetter(text) is { } letter) return new ParsedAnswer(letter.ToString(), [new Choice(letter)]);

        var cleaned = LatexCleaner.Clean(text);
        if (!options.PercentEqualsFraction) cleaned = cleaned.Replace("%", "", StringComparison.Ordinal).Trim();
        if (TextAnswer(cleaned) is { } words) return new ParsedAnswer(cleaned, [new Text(words)]);

        var readings = new List<Node>();
        if (DecimalComma().IsMatch(cleaned)) TryAdd(cleaned.Replace(',', '.'), readings, options, budget);
        TryAdd(cleaned, readings, options, budget);
        if (readings.Count == 0)
        {
            var eq = cleaned.LastIndexOf('=');
            if (eq > 0 && eq < cleaned.Length - 1) TryAdd(cleaned[(eq + 1)..], readings, options, budget);
        }
        return new ParsedAnswer(cleaned, readings);
    }

    private static void TryAdd(string text, List<Node> readings, MathCheckOptions options, Budget budget)
    {
        if (text.Length == 0) return;
        try
        {
            var node = Parser.Parse(text, budget, options.PercentEqualsFraction);
            readings.Add(ExpandPlusMinus(node));
        }
        catch (ParseException) { }
        catch (FormatException) { }
    }

    /// <summary>a \pm b anywhere in a scalar becomes the list (a + b, a - b).</summary>
    private static Node ExpandPlusMinus(Node node)
    {
        if (!node.Key().Contains("pm[", StringComparison.Ordinal)) return node;
        var plus = Choose(node, true);
        var minus = Choose(node, false);
        return new Collection(CollectionKind.List, [plus, minus]);
    }

    private static Node Choose(Node n, bool plus) => n switch
    {
        Call { Function: "pm" } c => new Sum([Choose(c.Args[0], plus), plus ? Choose(c.Args[1], plus) : Parser.Negate(Choose(c.Args[1], plus))]),
        Call c => c with { Args = c.Args.Select(a => Choose(a, plus)).ToList() },
        Sum s => new Sum(s.Terms.Select(t => Choose(t, plus)).ToList()),
        Product p => new Product(p.Factors.Select(f => Choose(f, plus)).ToList()),
        Power p => new Power(Choose(p.Base, plus), Choose(p.Exponent, plus)),
        Relation r => r with { Operands = r.Operands.Select(o => Choose(o, plus)).ToList() },
        _ => n,
    };

    /// <summary>"B", "(B)", "\text{(B)}", "\textbf{B}", "(b)", "B)", "(B) 12": the letter, else null.</summary>
    private static char? ChoiceLetter(string s)
    {
        var t = TextWrapper().Replace(s.Replace("$", "", StringComparison.Ordinal), "$1").Trim().TrimEnd('.').Trim();
        var m = StrictChoice().Match(t);
        if (!m.Success) m = LeadingChoice().Match(t);
        if (!m.Success) return null;
        var letter = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
        return char.ToUpperInvariant(letter[0]);
    }

    /// <summary>The words of a text answer ("\text{Monday}", "odd", "no solution"), or null.</summary>
    private static string? TextAnswer(string cleaned)
    {
        var m = WholeText().Match(cleaned);
        if (m.Success)
        {
            var content = m.Groups[1].Value.Trim();
            return WordsOnly().IsMatch(content) ? content.ToLowerInvariant() : null;
        }
        if (!WordsOnly().IsMatch(cleaned)) return null;
        // a run of letters that reads as math (xy, sinx, pi) stays math; real words become text
        var words = cleaned.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return words.Length > 1 || (cleaned.Length >= 4 && !LooksLikeMath(cleaned)) ? cleaned.ToLowerInvariant() : null;
    }

    private static bool LooksLikeMath(string letters) =>
        MathWord().IsMatch(letters);

    [GeneratedRegex(@"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")]
    private static partial Regex TextWrapper();

    [GeneratedRegex(@"^\(?([A-J])\)?$|^\(([a-j])\)$")]
    private static partial Regex StrictChoice();

    [GeneratedRegex(@"^\(([A-Ja-j])\)\s*\S|^([A-J])\)\s")]
    private static partial Regex LeadingChoice();

    [GeneratedRegex(@"^\\text\{([^{}]*)\}$")]
    private static partial Regex WholeText();

    [GeneratedRegex(@"^[A-Za-z][A-Za-z ]*$")]
    private static partial Regex WordsOnly();

    [GeneratedRegex(@"^(?:sin|cos|tan|sec|csc|cot|ln|log|exp|sqrt|pi|arcsin|arccos|arctan)[a-z]?$|^[a-z]{1,3}$")]
    private static partial Regex MathWord();

    [GeneratedRegex(@"^-?\d+,\d+%?$")]
    private static partial Regex DecimalComma();
}
