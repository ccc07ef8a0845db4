// Added tokens (special or not) split out of the text before anything else, as `tokenizers` does: first
// the non-normalized tokens are found in the raw text, then each remaining piece is normalized and the
// normalized tokens are found in it. Matching is leftmost-longest; single_word, lstrip and rstrip behave as
// in tokenizers' AddedVocabulary (lstrip/rstrip swallow neighbouring whitespace into the token).
using System.Globalization;

namespace PostTrain.Data.Tokenizers.Hf;

internal sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord);

internal sealed class AddedVocabulary
{
    private readonly Matcher _raw;
    private readonly Matcher _normalized;
    private readonly Func<string, string> _normalize;

    public AddedVocabulary(IReadOnlyList<AddedToken> tokens, Func<string, string> normalize)
    {
        Tokens = tokens;
        _normalize = normalize;
        _raw = new Matcher(tokens.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        _normalized = new Matcher(tokens.Where(t => t.Normalized).Select(t => (normalize(t.Content), t)));
    }

    public IReadOnlyList<AddedToken> Tokens { get; }

    /// <summary>The text split into added tokens and normalized plain-text pieces.</summary>
    public List<TextPiece> Split(string text)
    {
        var pieces = new List<TextPiece>();
        foreach (var raw in _raw.Split(text))
        {
            if (raw.IsToken)
            {
                pieces.Add(raw);
                continue;
            }
            pieces.AddRange(_normalized.Split(_normalize(raw.Text)));
        }
        return pieces;
    }

    private sealed class Matcher
    {
        private readonly Dictionary<char, (string Pattern, AddedToken Token)[]> _byFirstChar;

        public Matcher(IEnumerable<(string Pattern, AddedToken Token)> patterns) =>
            _byFirstChar = patterns.Where(p => p.Pattern.Length > 0)
                .GroupBy(p => p.Pattern[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(p => p.Pattern.Length).ToArray());

        public List<TextPiece> Split(string text)
        {
            var pieces = new List<TextPiece>();
            if (text.Length == 0) return pieces;
            var consumed = 0; // end of the last emitted piece
            var i = 0;
            while (i < text.Length)
            {
                var match = MatchAt(text, i);
                if (match is null)
                {
                    i++;
                    continue;
                }
                var (pattern, token) = match.Value;
                var start = i;
                var stop = i + pattern.Length;
                i = stop; // the search resumes after the match even when the match is discarded below
                if (token.SingleWord)
                {
                    var startOk = start == 0 || !IsWordChar(text, start - 1, before: true);
                    var stopOk = stop == text.Length || !IsWordChar(text, stop, before: false);
                    if (!startOk || !stopOk) continue;
                }
                if (token.LStrip)
                {
                    var s = start;
                    while (s > 0 && char.IsWhiteSpace(text[s - 1])) s--;
                    start = Math.Max(s, consumed);
                }
                if (token.RStrip)
                    while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
                if (consumed < start) pieces.Add(new TextPiece(text[consumed..start]));
                pieces.Add(new TextPiece(text[start..stop], token.Id));
                consumed = stop;
                i = Math.Max(i, stop);
            }
            if (consumed < text.Length) pieces.Add(new TextPiece(text[consumed..]));
            return pieces;
        }

        private (string Pattern, AddedToken Token)? MatchAt(string text, int at)
        {
            if (!_byFirstChar.TryGetValue(text[at], out var candidates)) return null;
            foreach (var c in candidates)
                if (at + c.Pattern.Length <= text.Length && string.CompareOrdinal(text, at, c.Pattern, 0, c.Pattern.Length) == 0)
                    return c;
            return null;
        }

        // Rust regex \w: letters, marks, decimal digits, connector punctuation (plus join controls).
        private static bool IsWordChar(string text, int index, bool before)
        {
            int cp;
            if (before && char.IsLowSurrogate(text[index]) && index > 0) cp = char.ConvertToUtf32(text[index - 1], text[index]);
            else if (!before && char.IsHighSurrogate(text[index]) && index + 1 < text.Length) cp = char.ConvertToUtf32(text[index], text[index + 1]);
            else cp = text[index];
            if (cp is 0x200C or 0x200D) return true;
            return CharUnicodeInfo.GetUnicodeCategory(cp) switch
            {
                UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                    or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark
                    or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                    or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation
                    or UnicodeCategory.LetterNumber => true,
                _ => false,
            };
        }
    }
}
