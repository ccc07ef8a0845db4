// Finds the final answer in a model completion (math-verify's priorities, simplified):
// 1. the last \boxed{} / \fbox{} (adjacent boxes form a list, see BoxedExtractor), or a later
//    "final answer ... is X" phrase, whichever comes last in the text;
// 2. else the last "the answer is X", "Answer: X" or "#### X";
//    X is the math in the first $..$ / \(..\) / \[..\] after the phrase, else the text up to the end of the
//    sentence, else its leading number or expression;
// 3. else (unanchored, each under its option) the rightmost of: the last math span $..$ / \(..\) / \[..\] /
//    $$..$$ whose content parses, and the last number (with thousands separators, comma decimals and %).
using System.Text.RegularExpressions;

namespace PostTrain.Rewards.Math;

internal static partial class AnswerExtractor
{
    public static string? Extract(string completion, MathCheckOptions options, Budget budget)
    {
        var boxed = BoxedExtractor.Extract(completion, out var boxStart);
        var final = FinalPhrase().Matches(completion);
        if (final.Count > 0 && (boxed is null || final[^1].Index > boxStart)
            && AfterPhrase(completion, final[^1], budget) is { Length: > 0 } fromFinal) return fromFinal;
        if (boxed is { Length: > 0 }) return boxed;
        var phrases = AnswerPhrase().Matches(completion);
        if (phrases.Count > 0 && AfterPhrase(completion, phrases[^1], budget) is { Length: > 0 } fromPhrase) return fromPhrase;
        return Unanchored(completion, options, budget);
    }

    private static string? Unanchored(string text, MathCheckOptions options, Budget budget)
    {
        // a short completion that is itself an answer ("\frac{10}{9}", "x = 5")
        if (text.Length <= 300 && !ProseWord().IsMatch(Command().Replace(text, " ")) && Parses(text.Trim(), budget)) return text.Trim();
        (string Value, int End)? math = null, number = null;
        if (options.FallbackToLastLatex)
        {
            var spans = MathSpan().Matches(text);
            for (var i = spans.Count - 1; i >= 0 && math is null; i--)
            {
                var content = FirstGroup(spans[i]).Trim();
                // text answers count here only when marked as text or when the span is the whole completion
                var textOk = content.Contains(@"\text", StringComparison.Ordinal) || spans[i].Length >= text.Trim().Length;
                if (Parses(content, budget, textOk)) math = (WithPercent(content, text, spans[i].Index + spans[i].Length), spans[i].Index + spans[i].Length);
            }
        }
        if (options.FallbackToLastNumber && NumberPattern().Matches(text) is { Count: > 0 } numbers)
            number = (numbers[^1].Value.Trim(), numbers[^1].Index + numbers[^1].Length);
        // a plain arithmetic expression such as "2/3" that ends where (or after) the last number does
        if (options.FallbackToLastNumber && PlainExpression().Matches(text) is { Count: > 0 } exprs
            && exprs[^1].Index + exprs[^1].Length >= (number?.End ?? 0))
            number = (exprs[^1].Value.Trim(), exprs[^1].Index + exprs[^1].Length);
        if (math is null) return number?.Value;
        if (number is null) return math.Value.Value;
        return number.Value.End > math.Value.End ? number.Value.Value : math.Value.Value;
    }

    private static string WithPercent(string content, string text, int end) =>
        BoxedExtractor.PercentAfter().IsMatch(text.AsSpan(end)) && !content.EndsWith('%') ? content + "%" : content;

    private static string? AfterPhrase(string text, Match phrase, Budget budget)
    {
        var after = text[(phrase.Index + phrase.Length)..];
        var line = after.TrimStart(' ', '*', ':', '\t');
        var offset = text.Length - line.Length;
        var sentence = SentenceEnd().Match(line) is { Success: true } end ? line[..end.Index] : line;
        var newline = sentence.IndexOf('\n');
        if (newline >= 0) sentence = sentence[..newline];
        // math delimiters win when the sentence holds some
        var window = line.Length > 400 ? line[..400] : line;
        var math = MathSpan().Match(window);
        if (math.Success && math.Index <= sentence.Length)
        {
            // spans joined by "and", "or" or commas form a list: "$12$ and $13$"
            var parts = new List<string> { WithPercent(FirstGroup(math).Trim(), text, offset + math.Index + math.Length) };
            var next = math.NextMatch();
            var spanEnd = math.Index + math.Length;
            while (next.Success && parts.Count < 6 && JoinGap().IsMatch(window[spanEnd..next.Index]))
            {
                parts.Add(WithPercent(FirstGroup(next).Trim(), text, offset + next.Index + next.Length));
                spanEnd = next.Index + next.Length;
                next = next.NextMatch();
            }
            return string.Join(", ", parts);
        }
        var candidate = sentence.Trim().Trim('*').Trim();
        if (candidate.Length == 0) return null;
        if (Parses(candidate, budget)) return candidate;
        var lead = LeadingExpression().Match(candidate);
        if (lead.Success && lead.Value.Trim().Length > 0) return lead.Value.Trim();
        var first = NumberPattern().Match(candidate);
        return first.Success ? first.Value.Trim() : null;
    }

    private static string FirstGroup(Match m) =>
        m.Groups.Cast<Group>().Skip(1).First(g => g.Success).Value;

    /// <summary>Does the candidate parse to an answer? Words alone ("correct") do not count unless
    /// <paramref name="textOk"/>: text answers need a box, \text{} or to be the whole completion.
    /// An exhausted budget propagates (the check reports "timeout").</summary>
    private static bool Parses(string s, Budget budget, bool textOk = false)
    {
        try
        {
            return AnswerParser.Parse(s, MathCheckOptions.Default, budget).Readings.Any(r => textOk || r is not Text);
        }
        catch (MathTooComplexException) { return false; }
    }

    [GeneratedRegex(@"\bfinal\s+answer\b[^\n]{0,100}?\s(?:is|was)\b\s*:?", RegexOptions.IgnoreCase)]
    private static partial Regex FinalPhrase();

    [GeneratedRegex(@"\b(?:the\s+)?answer\s+is\s*:?|\b(?:final\s+)?answer\s*\**\s*:\**|####", RegexOptions.IgnoreCase)]
    private static partial Regex AnswerPhrase();

    [GeneratedRegex(@"\$\$(.+?)\$\$|(?<!\\)\$((?:\\\$|[^$])+?)(?<!\\)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", RegexOptions.Singleline)]
    private static partial Regex MathSpan();

    [GeneratedRegex(@"^[\s""',]*(?:,|\band\b|\bor\b)[\s""']*$", RegexOptions.IgnoreCase)]
    private static partial Regex JoinGap();

    [GeneratedRegex(@"(?<![\w.])-?\d+(?:\.\d+)?(?:\s*[-+*/^]\s*\(?-?\d+(?:\.\d+)?\)?)+(?!\w|\.\d)")]
    private static partial Regex PlainExpression();

    /// <summary>A word of prose: three or more letters that are not a function name.</summary>
    [GeneratedRegex(@"(?!(?:sin|cos|tan|sec|csc|cot|log|exp|sqrt|arcsin|arccos|arctan|sinh|cosh|tanh)\b)[A-Za-z]{3,}")]
    private static partial Regex ProseWord();

    /// <summary>LaTeX commands, with the argument of text-like ones (units such as \text{meters}).</summary>
    [GeneratedRegex(@"\\(?:text|textbf|textnormal|mathrm|mbox)\s*\{[^{}]*\}|\\[A-Za-z]+")]
    private static partial Regex Command();

    [GeneratedRegex(@"\.(?:\s|$)|\s+I hope|,\s+(?:which|so|since|because|as)\b")]
    private static partial Regex SentenceEnd();

    [GeneratedRegex(@"^\(?[A-J]\)|^[-+]?\(?[\d.]+(?:[\d.,]*)(?:\s*[-+*/^×÷]\s*\(?[\d.]+\)?)*\s*%?")]
    private static partial Regex LeadingExpression();

    [GeneratedRegex(@"(?<![A-Za-z_\d.,])-?(?:[1-9]\d{0,2}(?:,\d{3})+(?!\d)|[1-9]\d{0,2}(?: \d{3})+(?![\d,])|\d+,\d+(?![\d,])|\d+)(?:\.\d+)?(?:\s*(?:%|percentage\b|percent\b|pct\b))?|(?<![\d.])\.\d+")]
    private static partial Regex NumberPattern();
}
