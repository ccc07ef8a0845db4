// The special-token strings of DeepSeek-V3 / R1 chat formatting (full-width bars and U+2581 as in the
// released tokenizer), shared by ByteTokenizer and the DeepSeek-V3 chat template.
namespace PostTrain.Data.Tokenizers;

public static class DeepSeekTokens
{
    public const string Bos = "<｜begin▁of▁sentence｜>";
    public const string Eos = "<｜end▁of▁sentence｜>";
    public const string User = "<｜User｜>";
    public const string Assistant = "<｜Assistant｜>";
    public const string ThinkStart = "<think>";
    public const string ThinkEnd = "</think>";

    /// <summary>DeepSeek-V3's padding token.</summary>
    public const string Pad = "<｜▁pad▁｜>";
}
