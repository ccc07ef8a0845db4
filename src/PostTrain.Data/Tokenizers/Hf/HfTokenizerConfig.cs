// Reads bos_token / eos_token / pad_token from a Hugging Face tokenizer_config.json (each a string or an
// object with "content"). Returns null when the file or its bos/eos entries are absent.
using System.Text.Json;

namespace PostTrain.Data.Tokenizers.Hf;

internal static class HfTokenizerConfig
{
    public static SpecialTokenNames? ReadSpecialTokenNames(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var bos = TokenString(doc.RootElement, "bos_token");
            var eos = TokenString(doc.RootElement, "eos_token");
            if (bos is null || eos is null) return null;
            return new SpecialTokenNames(bos, eos, TokenString(doc.RootElement, "pad_token"));
        }
        catch (JsonException e)
        {
            throw new DataException(path, null, null, $"malformed JSON: {e.Message}", e);
        }
    }

    private static string? TokenString(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };
    }
}
