// The one place a chat-template name becomes a template. Names (the value of data.chat_template and the
// like):
//   deepseek_v3  the built-in DeepSeek-V3 template (special tokens as separate parts, exact train mask)
//   plain        BOS + prompt + completion + EOS, no role markers
// Every recipe, the server, eval and the CLI call Resolve; an unknown name is a ChatTemplateException that
// names the config key and lists the valid names.
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Templates;

public static class ChatTemplates
{
    /// <summary>The names Resolve accepts besides a path to a .jinja file.</summary>
    public static IReadOnlyList<string> Names { get; } = ["deepseek_v3", "plain"];

    /// <summary>The template called <paramref name="name"/> for <paramref name="tokenizer"/>; <paramref name="modelDir"/> is
    /// the model (or tokenizer) directory it serves, or null; <paramref name="key"/> names the setting in errors.</summary>
    public static IChatTemplate Resolve(string name, ITokenizer tokenizer, string? modelDir = null, string key = "data.chat_template") => name switch
    {
        "deepseek_v3" => ChatTemplate.DeepSeekV3(tokenizer),
        "plain" => new ChatTemplate(tokenizer, ChatTemplateSpec.Plain),
        _ => throw new ChatTemplateException($"{key}: '{name}' is not a template ({string.Join(", ", Names)})"),
    };
}
