// The strings a chat template is made of, as a recipe gives them. An assistant turn renders as
// AssistantPrefix (not trained) + content + Eos (both trained) + AssistantSuffix (not trained); user turns
// as UserPrefix + content + UserSuffix; system messages, joined by SystemSeparator, once after Bos as
// SystemPrefix + text + SystemSuffix. GenerationPrefix ends a prompt rendered for generation.
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Templates;

public sealed record ChatTemplateSpec
{
    public string Bos { get; init; } = "";
    public string SystemPrefix { get; init; } = "";
    public string SystemSuffix { get; init; } = "";
    public string SystemSeparator { get; init; } = "\n\n";
    public string UserPrefix { get; init; } = "";
    public string UserSuffix { get; init; } = "";
    public string AssistantPrefix { get; init; } = "";
    public string AssistantSuffix { get; init; } = "";
    public string Eos { get; init; } = "";

    /// <summary>What RenderPrompt appends for the model to continue; null = AssistantPrefix.</summary>
    public string? GenerationPrefix { get; init; }

    /// <summary>DeepSeek-V3's template: &lt;｜begin▁of▁sentence｜&gt;{system}&lt;｜User｜&gt;{user}&lt;｜Assistant｜&gt;{assistant}&lt;｜end▁of▁sentence｜&gt;...</summary>
    public static ChatTemplateSpec DeepSeekV3 { get; } = new()
    {
        Bos = DeepSeekTokens.Bos,
        UserPrefix = DeepSeekTokens.User,
        AssistantPrefix = DeepSeekTokens.Assistant,
        Eos = DeepSeekTokens.Eos,
    };

    /// <summary>No role markers: BOS + prompt + completion + EOS (prompt/completion and plain text data).</summary>
    public static ChatTemplateSpec Plain { get; } = new() { Bos = DeepSeekTokens.Bos, Eos = DeepSeekTokens.Eos };
}
