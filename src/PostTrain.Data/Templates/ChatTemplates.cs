// The one place a chat-template name becomes a template. Names (the value of data.chat_template and the like):
//   auto         the model directory's own template when it has one, else deepseek_v3 (the default)
//   model        the model directory's own template (chat_template.jinja or tokenizer_config.json's
//                chat_template, "default" of a named list); an error when it has none
//   model:NAME   one named template of tokenizer_config.json's list (e.g. model:tool_use)
//   deepseek_v3  the built-in DeepSeek-V3 template (special tokens as separate parts, exact train mask)
//   plain        BOS + prompt + completion + EOS, no role markers
//   a path to a .jinja file (anything ending in .jinja or containing a path separator)
// Jinja templates render exactly as transformers' apply_chat_template does, with the special tokens of the
// model directory's tokenizer_config.json (or the tokenizer's BOS/EOS when it has none) and the template
// keyword arguments (enable_thinking, ...) given here. Every recipe, the server, eval and the CLI call Resolve;
// a bad name or file is a ChatTemplateException naming the config key.
using PostTrain.Data.Templates.Jinja;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Templates;

public static class ChatTemplates
{
    /// <summary>The names Resolve accepts besides model:NAME and a path to a .jinja file.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", "model", "deepseek_v3", "plain"];

    /// <summary>The template called <paramref name="name"/> for <paramref name="tokenizer"/>. <paramref name="modelDir"/> is
    /// the model (or tokenizer) directory it serves, or null (or a built-in model name, which has no files);
    /// <paramref name="kwargs"/> are extra template variables; <paramref name="key"/> names the setting in errors.</summary>
    public static IChatTemplate Resolve(string name, ITokenizer tokenizer, string? modelDir = null, string key = "data.chat_template",
        IReadOnlyDictionary<string, object?>? kwargs = null, Func<DateTime>? now = null)
    {
        var dir = modelDir is not null && Directory.Exists(modelDir) ? modelDir : null;
        switch (name)
        {
            case "deepseek_v3": return ChatTemplate.DeepSeekV3(tokenizer);
            case "plain": return new ChatTemplate(tokenizer, ChatTemplateSpec.Plain);
            case "auto":
                return (dir is null ? null : ModelTemplateFiles.Find(dir)) is { } found
                    ? Jinja(found, tokenizer, dir, kwargs, now)
                    : ChatTemplate.DeepSeekV3(tokenizer);
            case "model":
            case var m when m.StartsWith("model:", StringComparison.Ordinal):
                {
                    if (dir is null)
                        throw new ChatTemplateException($"{key}: '{name}' needs a model directory, but '{modelDir ?? "(none)"}' is not one");
                    var own = ModelTemplateFiles.Find(dir, name == "model" ? null : name["model:".Length..])
                        ?? throw new ChatTemplateException($"{key}: model directory '{dir}' has no chat template (no chat_template.jinja, " +
                            "no chat_template in tokenizer_config.json); use deepseek_v3, plain or a .jinja file");
                    return Jinja(own, tokenizer, dir, kwargs, now);
                }
            case var p when p.EndsWith(".jinja", StringComparison.Ordinal) || p.Contains('/') || p.Contains(Path.DirectorySeparatorChar):
                if (!File.Exists(p)) throw new ChatTemplateException($"{key}: template file '{p}' not found");
                return Jinja(new ModelTemplate(File.ReadAllText(p), p), tokenizer, dir, kwargs, now);
        }
        throw new ChatTemplateException($"{key}: '{name}' is not a template ({string.Join(", ", Names)}, model:NAME or a path to a .jinja file)");
    }

    private static JinjaChatTemplate Jinja(ModelTemplate t, ITokenizer tokenizer, string? dir, IReadOnlyDictionary<string, object?>? kwargs, Func<DateTime>? now)
    {
        var special = ModelTemplateFiles.SpecialTokens(dir);
        if (special.Count == 0)
        {
            if (tokenizer.IdToToken(tokenizer.BosId) is { } bos) special["bos_token"] = bos;
            if (tokenizer.IdToToken(tokenizer.EosId) is { } eos) special["eos_token"] = eos;
        }
        var tokens = special.ToDictionary(kv => (string)kv.Key, kv => kv.Value);
        return new JinjaChatTemplate(tokenizer, t.Source, t.Origin, tokens, kwargs, now);
    }

    /// <summary>Template keyword arguments from a recipe (data.chat_template_kwargs): each value is read as JSON
    /// (true, 3, null, ["a"], {"k": 1}) when it parses as JSON, else kept as the string.</summary>
    public static Dictionary<string, object?> ParseKwargs(IReadOnlyDictionary<string, string>? raw)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in raw ?? new Dictionary<string, string>())
        {
            try { result[k] = PyJsonReader.Parse(v); }
            catch (System.Text.Json.JsonException) { result[k] = v; }
        }
        return result;
    }
}
