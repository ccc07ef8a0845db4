// Which token strings are BOS, EOS and padding. tokenizer.json does not say; Hugging Face keeps this in
// tokenizer_config.json, which HfBpeTokenizer.Load reads when present. Defaults: DeepSeek-V3's names.
namespace PostTrain.Data.Tokenizers;

public sealed record SpecialTokenNames(string Bos, string Eos, string? Pad = null)
{
    /// <summary>DeepSeek-V3: BOS/EOS as in its tokenizer_config.json, pad "&lt;｜▁pad▁｜&gt;" (EOS when absent).</summary>
    public static SpecialTokenNames DeepSeek { get; } = new(DeepSeekTokens.Bos, DeepSeekTokens.Eos, DeepSeekTokens.Pad);
}
