// Where a Hugging Face model directory keeps its chat template and special tokens, as transformers reads them:
// chat_template.jinja, else tokenizer_config.json "chat_template" (a string, or a list of {name, template} of which
// "default" is used unless a name is asked for). The special-token map (bos_token, eos_token, unk_token,
// sep_token, pad_token, cls_token, mask_token, additional_special_tokens; each a string or {"content": ...}) is
// what transformers passes to the template.
using System.Text.Json;
using PostTrain.Data.Templates.Jinja;

namespace PostTrain.Data.Templates;

public sealed record ModelTemplate(string Source, string Origin);

public static class ModelTemplateFiles
{
    private static readonly string[] SpecialKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    /// <summary>The directory's own template, or null when it has none. <paramref name="name"/> picks one of a list.</summary>
    public static ModelTemplate? Find(string dir, string? name = null)
    {
        var jinja = Path.Combine(dir, "chat_template.jinja");
        if (File.Exists(jinja) && name is null) return new ModelTemplate(File.ReadAllText(jinja), jinja);
        var config = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(config)) return null;
        using var doc = ParseJson(config);
        if (!doc.RootElement.TryGetProperty("chat_template", out var t) || t.ValueKind == JsonValueKind.Null) return null;
        if (t.ValueKind == JsonValueKind.String) return new ModelTemplate(t.GetString()!, config + " (chat_template)");
        if (t.ValueKind != JsonValueKind.Array) throw new DataException(config, null, "chat_template", "must be a string or a list of {name, template}");
        var named = new Dictionary<string, string>();
        foreach (var item in t.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                || !item.TryGetProperty("template", out var body) || body.ValueKind != JsonValueKind.String)
                throw new DataException(config, null, "chat_template", "each entry of the list must be {\"name\": ..., \"template\": ...}");
            named[n.GetString()!] = body.GetString()!;
        }
        var pick = name ?? "default";
        if (named.TryGetValue(pick, out var chosen)) return new ModelTemplate(chosen, $"{config} (chat_template '{pick}')");
        throw new ChatTemplateException($"{config}: no chat template named '{pick}' (has {string.Join(", ", named.Keys)})");
    }

    /// <summary>transformers' special_tokens_map from tokenizer_config.json, or an empty map when there is none.</summary>
    public static PyDict SpecialTokens(string? dir)
    {
        var map = new PyDict();
        var config = dir is null ? null : Path.Combine(dir, "tokenizer_config.json");
        if (config is null || !File.Exists(config)) return map;
        using var doc = ParseJson(config);
        var root = doc.RootElement;
        foreach (var key in SpecialKeys)
            if (root.TryGetProperty(key, out var v) && TokenString(v) is { Length: > 0 } s) map[key] = s;
        if (root.TryGetProperty("additional_special_tokens", out var extra) && extra.ValueKind == JsonValueKind.Array)
        {
            var list = extra.EnumerateArray().Select(TokenString).Where(s => !string.IsNullOrEmpty(s)).Select(s => (object?)s).ToList();
            if (list.Count > 0) map["additional_special_tokens"] = list;
        }
        if (root.TryGetProperty("extra_special_tokens", out var named) && named.ValueKind == JsonValueKind.Object)
            foreach (var p in named.EnumerateObject())
                if (TokenString(p.Value) is { Length: > 0 } s) map[p.Name] = s;
        return map;
    }

    private static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new DataException(path, e.LineNumber is long l ? $"line {l + 1}" : null, null, $"malformed JSON: {e.Message}", e); }
    }

    private static string? TokenString(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => null,
    };
}
