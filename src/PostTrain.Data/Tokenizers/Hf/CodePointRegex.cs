// A .NET Regex that matches like Oniguruma (the engine Hugging Face tokenizers uses) on text with
// characters outside the BMP. .NET regexes see UTF-16 code units, so an emoji is two surrogates of
// category Cs and never \p{S}; Oniguruma sees one code point. Before matching, each surrogate pair is
// replaced by one BMP stand-in of the same Unicode category (e.g. U+1F600 So -> U+00A6 So), the match is
// run, and offsets are mapped back. Exact as long as the pattern names astral characters only through
// categories (\p{..}, \s, \w), which holds for the GPT-2, Llama-3, Qwen and DeepSeek-V3 patterns.
// Ruby syntax makes ^ and $ line anchors, hence RegexOptions.Multiline.
using System.Globalization;
using System.Text.RegularExpressions;

namespace PostTrain.Data.Tokenizers.Hf;

internal sealed class CodePointRegex
{
    private static readonly Dictionary<UnicodeCategory, char> StandIns = BuildStandIns();
    private readonly Regex _regex;

    public CodePointRegex(string pattern)
    {
        if (pattern.Contains("&&", StringComparison.Ordinal))
            throw new NotSupportedException($"regex '{pattern}': character-class intersection (&&) has no .NET equivalent");
        if (pattern.Any(char.IsSurrogate))
            throw new NotSupportedException($"regex '{pattern}': characters outside the BMP in a pattern are not supported");
        Pattern = pattern;
        _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Multiline | RegexOptions.Compiled);
    }

    public string Pattern { get; }

    /// <summary>Non-overlapping matches, left to right, as [Start, End) char offsets into <paramref name="text"/>.</summary>
    public IEnumerable<(int Start, int End)> Matches(string text)
    {
        if (!text.Any(char.IsSurrogate))
        {
            foreach (Match m in _regex.Matches(text)) yield return (m.Index, m.Index + m.Length);
            yield break;
        }

        var substituted = new char[text.Length];
        var offsets = new int[text.Length + 1]; // substituted index -> original index
        var n = 0;
        for (var i = 0; i < text.Length; i++)
        {
            offsets[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                substituted[n++] = StandIns.TryGetValue(category, out var c) ? c : '\uE000';
                i++;
            }
            else
            {
                substituted[n++] = text[i];
            }
        }
        offsets[n] = text.Length;
        foreach (Match m in _regex.Matches(new string(substituted, 0, n)))
            yield return (offsets[m.Index], offsets[m.Index + m.Length]);
    }

    // BMP characters of each category that no supported pattern names explicitly (not ASCII, not CJK).
    private static Dictionary<UnicodeCategory, char> BuildStandIns()
    {
        var table = new Dictionary<UnicodeCategory, char>
        {
            [UnicodeCategory.UppercaseLetter] = '\u0100',
            [UnicodeCategory.LowercaseLetter] = '\u0101',
            [UnicodeCategory.TitlecaseLetter] = '\u01C5',
            [UnicodeCategory.ModifierLetter] = '\u02B0',
            [UnicodeCategory.OtherLetter] = '\u05D0',
            [UnicodeCategory.NonSpacingMark] = '\u0300',
            [UnicodeCategory.SpacingCombiningMark] = '\u0903',
            [UnicodeCategory.EnclosingMark] = '\u20DD',
            [UnicodeCategory.DecimalDigitNumber] = '\u0660',
            [UnicodeCategory.LetterNumber] = '\u2160',
            [UnicodeCategory.OtherNumber] = '\u00B2',
            [UnicodeCategory.ConnectorPunctuation] = '\u203F',
            [UnicodeCategory.DashPunctuation] = '\u2010',
            [UnicodeCategory.OpenPunctuation] = '\u2045',
            [UnicodeCategory.ClosePunctuation] = '\u2046',
            [UnicodeCategory.InitialQuotePunctuation] = '\u2039',
            [UnicodeCategory.FinalQuotePunctuation] = '\u203A',
            [UnicodeCategory.OtherPunctuation] = '\u00B6',
            [UnicodeCategory.MathSymbol] = '\u00D7',
            [UnicodeCategory.CurrencySymbol] = '\u00A2',
            [UnicodeCategory.ModifierSymbol] = '\u02C2',
            [UnicodeCategory.OtherSymbol] = '\u00A6',
            [UnicodeCategory.Format] = '\u00AD',
            [UnicodeCategory.PrivateUse] = '\uE000',
            [UnicodeCategory.OtherNotAssigned] = '\u0378',
        };
        foreach (var (category, c) in table)
            if (CharUnicodeInfo.GetUnicodeCategory(c) != category)
                throw new InvalidOperationException($"stand-in U+{(int)c:X4} is not of category {category} in this runtime");
        return table;
    }
}
