// Finds the final answer in a model completion, in this order:
// 1. the last \boxed{} / \fbox{} (adjacent boxes together form a list, see BoxedExtractor);
// 2. the last "final answer is X", "the answer is X", "Answer: X" or "#### X": X is the math in the first
//    $..$ / \(..\) / \[..\] after the phrase, else the text up to the end of the sentence (a period followed
//    by a space or the end, or a line break), else its leading number or expression;
// 3. optionally (MathCheckOptions.FallbackToLastNumber) the last number in the text, with its % sign.
using System.Text.RegularExpressions;

namespace PostTrain.Rewards.Math;

internal static partial class AnswerExtractor
{
    public static string? Extract(string completion, MathCheckOptions options)
    {
        if (BoxedExtractor.Extract(completion) is { Length: > 0 } boxed) return boxed;
        if (FromPhrase(completion) is { Length: > 0 } phrase) return phrase;
        if (!options.FallbackToLastNumber) return null;
        var numbers = NumberPattern().Matches(completion);
        return numbers.Count == 0 ? null : numbers[^1].Value.Trim();
    }

    private static string? FromPhrase(string text)
    {
        var matches = AnswerPhrase().Matches(text);
        if (matches.Count == 0) return null;
        var after = text[(matches[^1].Index + matches[^1].Length)..];
        var line = after.TrimStart(' ', '*', ':', '\t');
        var newline = line.IndexOf('\n');
        var sentence = SentenceEnd().Match(line) is { Success: true } end ? line[..end.Index] : line;
        if (newline >= 0 && newline < sentence.Length) sentence = sentence[..newline];
        // math delimiters win when the sentence holds some
        var math = MathSpan().Match(line.Length > 400 ? line[..400] : line);
        if (math.Success && math.Index <= sentence.Length)
            return FirstGroup(math).Trim();
        var candidate = sentence.Trim().Trim('*').Trim();
        if (candidate.Length == 0) return null;
        if (LooksLikeAnswer(candidate)) return candidate;
        var lead = LeadingExpression().Match(candidate);
        return lead.Success ? lead.Value.Trim() : candidate;
    }

    private static string FirstGroup(Match m) =>
        m.Groups.Cast<Group>().Skip(1).First(g => g.Success).Value;

    private static bool LooksLikeAnswer(string s)
    {
        try
        {
            return AnswerParser.Parse(s, MathCheckOptions.Default, new Budget(TimeSpan.FromMilliseconds(50))).Readings.Count > 0;
        }
        catch (MathTimeoutException) { return false; }
        catch (MathTooComplexException) { return false; }
    }

    [GeneratedRegex(@"(?:\bfinal\s+answer\b[^.\n]{0,60}?\b(?:is|was)\b\s*:?|\b(?:the\s+)?answer\s+is\s*:?|\b(?:final\s+)?answer\s*\**\s*:\**|####)", RegexOptions.IgnoreCase)]
    private static partial Regex AnswerPhrase();

    [GeneratedRegex(@"\$\$(.+?)\$\$|\$([^$]+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", RegexOptions.Singleline)]
    private static partial Regex MathSpan();

    [GeneratedRegex(@"\.(?:\s|$)|\s+I hope|,\s+(?:which|so|since|because|as)\b")]
    private static partial Regex SentenceEnd();

    [GeneratedRegex(@"^\(?[A-J]\)|^[-+]?\(?[\d.]+(?:[\d.,]*)(?:\s*[-+*/^×÷]\s*\(?[\d.]+\)?)*\s*%?")]
    private static partial Regex LeadingExpression();

    [GeneratedRegex(@"(?<![A-Za-z_\d.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*%)?|(?<![\d.])\.\d+")]
    private static partial Regex NumberPattern();
}
