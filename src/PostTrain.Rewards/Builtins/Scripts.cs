// Unicode script classification for the language reward: which writing system a letter belongs to, by code-point
// ranges (the main blocks only; rare extensions fall into "other"). Han and kana letters are "ideographic": each one
// counts as a word of its own, since Chinese and Japanese are written without spaces.
using System.Text;

namespace PostTrain.Rewards.Builtins;

public static class Scripts
{
    public const string Latin = "latin", Han = "han", Kana = "kana", Hangul = "hangul", Cyrillic = "cyrillic",
        Greek = "greek", Arabic = "arabic", Other = "other";

    /// <summary>Language codes and script names a target may use, and the scripts each accepts.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Targets = new Dictionary<string, string[]>
    {
        ["en"] = [Latin], ["fr"] = [Latin], ["de"] = [Latin], ["es"] = [Latin], ["it"] = [Latin], ["pt"] = [Latin],
        ["zh"] = [Han], ["ja"] = [Han, Kana], ["ko"] = [Hangul], ["ru"] = [Cyrillic], ["uk"] = [Cyrillic],
        ["el"] = [Greek], ["ar"] = [Arabic],
        [Latin] = [Latin], [Han] = [Han], [Kana] = [Kana], [Hangul] = [Hangul], [Cyrillic] = [Cyrillic],
        [Greek] = [Greek], [Arabic] = [Arabic],
    };

    /// <summary>The script of a letter (call only for letters).</summary>
    public static string Of(Rune r)
    {
        var c = r.Value;
        if (c <= 0x024F || c is >= 0x1E00 and <= 0x1EFF or >= 0x2C60 and <= 0x2C7F or >= 0xA720 and <= 0xA7FF
            or >= 0xFF21 and <= 0xFF3A or >= 0xFF41 and <= 0xFF5A) return Latin;
        if (c is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0xF900 and <= 0xFAFF or >= 0x20000 and <= 0x3134F
            or 0x3005 or 0x3007) return Han;
        if (c is >= 0x3040 and <= 0x30FF or >= 0x31F0 and <= 0x31FF or >= 0xFF66 and <= 0xFF9D) return Kana;
        if (c is >= 0xAC00 and <= 0xD7AF or >= 0x1100 and <= 0x11FF or >= 0x3130 and <= 0x318F) return Hangul;
        if (c is >= 0x0400 and <= 0x052F) return Cyrillic;
        if (c is >= 0x0370 and <= 0x03FF or >= 0x1F00 and <= 0x1FFF) return Greek;
        if (c is >= 0x0600 and <= 0x06FF or >= 0x0750 and <= 0x077F) return Arabic;
        return Other;
    }

    /// <summary>Words of the text: runs of letters, digits, combining marks and apostrophes; each Han or kana letter
    /// is a word by itself. Returns, per word that contains at least one letter, the set of scripts of its letters.</summary>
    public static List<HashSet<string>> LetterWords(string text)
    {
        var words = new List<HashSet<string>>();
        HashSet<string>? current = null;
        var inWord = false;
        foreach (var r in text.EnumerateRunes())
        {
            var letter = Rune.IsLetter(r);
            var script = letter ? Of(r) : null;
            if (script is Han or Kana)
            {
                Flush();
                words.Add([script]);
                continue;
            }
            var cat = Rune.GetUnicodeCategory(r);
            var wordChar = letter || Rune.IsDigit(r) || cat is System.Globalization.UnicodeCategory.NonSpacingMark
                or System.Globalization.UnicodeCategory.SpacingCombiningMark || (inWord && r.Value is '\'' or '\u2019');
            if (!wordChar) { Flush(); continue; }
            inWord = true;
            if (script is not null) (current ??= []).Add(script);
        }
        Flush();
        return words;

        void Flush()
        {
            if (current is not null) words.Add(current);
            current = null;
            inWord = false;
        }
    }
}
