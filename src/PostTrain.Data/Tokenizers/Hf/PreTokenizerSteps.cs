// The Hugging Face pre-tokenizers a byte-level BPE tokenizer uses, each splitting one piece of text into
// smaller pieces: Split (regex or literal, with the five split behaviours and invert), ByteLevel (optional
// prefix space and GPT-2 regex, then bytes -> printable chars), Digits, and Sequence (each step applied to
// every piece the previous step produced). Empty pieces are dropped, as in `tokenizers`.
namespace PostTrain.Data.Tokenizers.Hf;

internal interface IPreTokenizerStep
{
    void Split(string piece, List<string> output);
}

internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

internal sealed class SequenceStep(IReadOnlyList<IPreTokenizerStep> steps) : IPreTokenizerStep
{
    public void Split(string piece, List<string> output)
    {
        List<string> current = [piece];
        foreach (var step in steps)
        {
            var next = new List<string>();
            foreach (var p in current) step.Split(p, next);
            current = next;
        }
        output.AddRange(current);
    }
}

/// <summary>Splits on a regex, a literal string, or (Digits) on numeric characters.</summary>
internal sealed class SplitStep : IPreTokenizerStep
{
    private readonly Func<string, IEnumerable<(int Start, int End)>> _find;
    private readonly SplitBehavior _behavior;
    private readonly bool _invert;

    private SplitStep(Func<string, IEnumerable<(int Start, int End)>> find, SplitBehavior behavior, bool invert)
    {
        _find = find;
        _behavior = behavior;
        _invert = invert;
    }

    public static SplitStep Regex(string pattern, SplitBehavior behavior, bool invert) =>
        new(new CodePointRegex(pattern).Matches, behavior, invert);

    public static SplitStep Literal(string literal, SplitBehavior behavior, bool invert) =>
        new(text => FindLiteral(text, literal), behavior, invert);

    /// <summary>HF's Digits pre-tokenizer: each numeric code point alone, or runs of them.</summary>
    public static SplitStep Digits(bool individualDigits) =>
        new(FindNumericCodePoints, individualDigits ? SplitBehavior.Isolated : SplitBehavior.Contiguous, invert: false);

    public void Split(string piece, List<string> output)
    {
        if (piece.Length == 0) return;
        // Cover the piece with (range, isMatch) spans, as tokenizers' Pattern::find_matches does.
        var spans = new List<(int Start, int End, bool IsMatch)>();
        var previous = 0;
        foreach (var (start, end) in _find(piece))
        {
            if (previous != start) spans.Add((previous, start, false));
            spans.Add((start, end, true));
            previous = end;
        }
        if (previous != piece.Length) spans.Add((previous, piece.Length, false));
        if (_invert) spans = [.. spans.Select(s => (s.Start, s.End, !s.IsMatch))];

        foreach (var (start, end) in Combine(spans))
            if (end > start) output.Add(piece[start..end]);
    }

    private List<(int Start, int End)> Combine(List<(int Start, int End, bool IsMatch)> spans)
    {
        var result = new List<(int Start, int End)>();
        var previousMatch = false;
        switch (_behavior)
        {
            case SplitBehavior.Isolated:
                result.AddRange(spans.Select(s => (s.Start, s.End)));
                break;
            case SplitBehavior.Removed:
                result.AddRange(spans.Where(s => !s.IsMatch).Select(s => (s.Start, s.End)));
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var s in spans)
                {
                    if (s.IsMatch && !previousMatch && result.Count > 0) result[^1] = (result[^1].Start, s.End);
                    else result.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (var i = spans.Count - 1; i >= 0; i--)
                {
                    var s = spans[i];
                    if (s.IsMatch && !previousMatch && result.Count > 0) result[^1] = (s.Start, result[^1].End);
                    else result.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                result.Reverse();
                break;
            case SplitBehavior.Contiguous:
                foreach (var s in spans)
                {
                    if (s.IsMatch == previousMatch && result.Count > 0) result[^1] = (result[^1].Start, s.End);
                    else result.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
        }
        return result;
    }

    private static IEnumerable<(int Start, int End)> FindLiteral(string text, string literal)
    {
        if (literal.Length == 0) yield break;
        var at = 0;
        while ((at = text.IndexOf(literal, at, StringComparison.Ordinal)) >= 0)
        {
            yield return (at, at + literal.Length);
            at += literal.Length;
        }
    }

    private static IEnumerable<(int Start, int End)> FindNumericCodePoints(string text)
    {
        for (var i = 0; i < text.Length;)
        {
            var rune = System.Text.Rune.GetRuneAt(text, i);
            var category = System.Text.Rune.GetUnicodeCategory(rune);
            if (category is System.Globalization.UnicodeCategory.DecimalDigitNumber
                or System.Globalization.UnicodeCategory.LetterNumber or System.Globalization.UnicodeCategory.OtherNumber)
                yield return (i, i + rune.Utf16SequenceLength);
            i += rune.Utf16SequenceLength;
        }
    }
}

/// <summary>HF's ByteLevel pre-tokenizer: prefix space, optional GPT-2 split, bytes to printable chars.</summary>
internal sealed class ByteLevelStep(bool addPrefixSpace, bool useRegex) : IPreTokenizerStep
{
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private static readonly Lazy<SplitStep> Gpt2Split = new(() => SplitStep.Regex(Gpt2Pattern, SplitBehavior.Isolated, invert: false));

    public void Split(string piece, List<string> output)
    {
        if (addPrefixSpace && !piece.StartsWith(' ')) piece = " " + piece;
        if (!useRegex)
        {
            if (piece.Length > 0) output.Add(ByteLevelAlphabet.Map(piece));
            return;
        }
        var parts = new List<string>();
        Gpt2Split.Value.Split(piece, parts);
        output.AddRange(parts.Select(ByteLevelAlphabet.Map));
    }
}
