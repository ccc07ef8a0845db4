// Hugging Face normalizers supported for byte-level BPE: none, NFC, NFD, NFKC, NFKD and Sequence of those.
// Unicode normalization needs ICU; under InvariantGlobalization (this repository's default) .NET silently
// returns the text unchanged, so then text is passed through only where normalization is provably the
// identity (NFC: no combining marks or other characters NFC can change; other forms: ASCII), and anything
// else raises NotSupportedException rather than encoding differently from `tokenizers`.
using System.Globalization;
using System.Text;

namespace PostTrain.Data.Tokenizers.Hf;

internal static class Normalizers
{
    private static readonly bool RuntimeNormalizes = "e\u0301".Normalize(NormalizationForm.FormC) == "\u00E9";

    public static Func<string, string> Unicode(NormalizationForm form) => text =>
    {
        if (RuntimeNormalizes) return text.Normalize(form);
        var identity = form == NormalizationForm.FormC ? text.EnumerateRunes().All(IsNfcStable) : text.All(char.IsAscii);
        if (identity) return text;
        throw new NotSupportedException(
            $"the tokenizer's {form} normalizer needs ICU, which this process runs without (InvariantGlobalization): " +
            "run with InvariantGlobalization=false and libicu installed to encode this text exactly");
    };

    public static Func<string, string> Sequence(IReadOnlyList<Func<string, string>> steps) =>
        text => steps.Aggregate(text, (t, step) => step(t));

    // Conservative: code points below U+0300 never change under NFC; combining marks and the blocks with
    // NFC singletons, composition exclusions or composing jamo/vowel signs are treated as unsafe.
    private static bool IsNfcStable(Rune r)
    {
        var c = r.Value;
        if (c < 0x300) return true;
        if (Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
            or UnicodeCategory.EnclosingMark)
            return false;
        return !(c is (>= 0x0340 and <= 0x0344) or 0x0374 or 0x037E or 0x0387 or (>= 0x0900 and <= 0x0DFF)
            or (>= 0x0F00 and <= 0x0FFF) or (>= 0x1100 and <= 0x11FF) or (>= 0x1F00 and <= 0x1FFF) or 0x2000 or 0x2001
            or 0x2126 or 0x212A or 0x212B or 0x2329 or 0x232A or 0x2ADC or (>= 0xF900 and <= 0xFAFF)
            or (>= 0xFB1D and <= 0xFB4F) or (>= 0x11000 and <= 0x11FFF) or (>= 0x1D15E and <= 0x1D1C0)
            or (>= 0x2F800 and <= 0x2FA1F));
    }
}
