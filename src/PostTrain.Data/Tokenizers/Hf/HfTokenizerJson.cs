// Parses tokenizer.json into the parts HfBpeTokenizer runs. Anything outside the supported subset raises a
// DataException naming the file and the JSON key, never a silently different tokenizer.
using System.Text;
using System.Text.Json;

namespace PostTrain.Data.Tokenizers.Hf;

internal static class HfTokenizerJson
{
    public static HfBpeTokenizer Parse(string json, string source, SpecialTokenNames names)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new DataException(source, null, null, $"malformed JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            Exception Error(string key, string problem) => new DataException(source, null, key, problem);

            var normalize = ParseNormalizer(Get(root, "normalizer"), "normalizer", Error);
            var preTokenizer = ParsePreTokenizer(Get(root, "pre_tokenizer"), "pre_tokenizer", Error);
            var model = ParseModel(root, Error);
            var decoder = Get(root, "decoder");
            if (decoder is { } d && TypeOf(d) != "ByteLevel")
                throw Error("decoder.type", $"decoder '{TypeOf(d)}' is not supported (only ByteLevel)");

            var added = new List<AddedToken>();
            if (Get(root, "added_tokens") is { ValueKind: JsonValueKind.Array } addedJson)
                foreach (var t in addedJson.EnumerateArray())
                    added.Add(new AddedToken(
                        t.GetProperty("id").GetInt32(), t.GetProperty("content").GetString()!,
                        Bool(t, "special", false), Bool(t, "normalized", !Bool(t, "special", false)),
                        Bool(t, "lstrip", false), Bool(t, "rstrip", false), Bool(t, "single_word", false)));
            return new HfBpeTokenizer(source, new AddedVocabulary(added, normalize), preTokenizer, model, names);
        }
    }

    private static BpeModel ParseModel(JsonElement root, Func<string, string, Exception> error)
    {
        var model = Get(root, "model") ?? throw error("model", "missing");
        var type = Get(model, "type")?.GetString();
        if (type is not null and not "BPE") throw error("model.type", $"model '{type}' is not supported (only BPE)");
        if (Get(model, "dropout") is { ValueKind: JsonValueKind.Number } dropout && dropout.GetDouble() > 0)
            throw error("model.dropout", "BPE dropout is not supported");
        if (Bool(model, "byte_fallback", false)) throw error("model.byte_fallback", "byte_fallback is not supported");
        foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (Get(model, key) is { ValueKind: JsonValueKind.String } v && v.GetString()!.Length > 0)
                throw error($"model.{key}", $"{key} is not supported");

        var vocabJson = Get(model, "vocab") ?? throw error("model.vocab", "missing");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocabJson.EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();

        var merges = new List<(string, string)>();
        if (Get(model, "merges") is { ValueKind: JsonValueKind.Array } mergesJson)
        {
            var i = 0;
            foreach (var m in mergesJson.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
                {
                    merges.Add((m[0].GetString()!, m[1].GetString()!));
                }
                else if (m.ValueKind == JsonValueKind.String && m.GetString()!.Split(' ') is [var a, var b])
                {
                    merges.Add((a, b));
                }
                else
                {
                    throw error($"model.merges[{i}]", $"expected \"a b\" or [\"a\", \"b\"], got {m.GetRawText()}");
                }
                i++;
            }
        }

        int? unkId = null;
        if (Get(model, "unk_token") is { ValueKind: JsonValueKind.String } unk)
            unkId = vocab.TryGetValue(unk.GetString()!, out var u) ? u : throw error("model.unk_token", $"'{unk.GetString()}' is not in the vocabulary");
        return new BpeModel(vocab, merges, unkId, Bool(model, "fuse_unk", false), Bool(model, "ignore_merges", false),
            problem => error("model.merges", problem));
    }

    private static Func<string, string> ParseNormalizer(JsonElement? json, string key, Func<string, string, Exception> error)
    {
        if (json is not { } n) return text => text;
        var type = TypeOf(n);
        return type switch
        {
            "NFC" => Normalizers.Unicode(NormalizationForm.FormC),
            "NFD" => Normalizers.Unicode(NormalizationForm.FormD),
            "NFKC" => Normalizers.Unicode(NormalizationForm.FormKC),
            "NFKD" => Normalizers.Unicode(NormalizationForm.FormKD),
            "Sequence" => Normalizers.Sequence([.. n.GetProperty("normalizers").EnumerateArray()
                .Select((x, i) => ParseNormalizer(x, $"{key}.normalizers[{i}]", error))]),
            _ => throw error($"{key}.type", $"normalizer '{type}' is not supported (NFC, NFD, NFKC, NFKD, Sequence)"),
        };
    }

    private static IPreTokenizerStep? ParsePreTokenizer(JsonElement? json, string key, Func<string, string, Exception> error)
    {
        if (json is not { } p) return null;
        var type = TypeOf(p);
        switch (type)
        {
            case "Sequence":
                return new SequenceStep([.. p.GetProperty("pretokenizers").EnumerateArray()
                    .Select((x, i) => ParsePreTokenizer(x, $"{key}.pretokenizers[{i}]", error)!)]);
            case "ByteLevel":
                return new ByteLevelStep(Bool(p, "add_prefix_space", true), Bool(p, "use_regex", true));
            case "Digits":
                return SplitStep.Digits(Bool(p, "individual_digits", false));
            case "Split":
                var behaviorName = Get(p, "behavior")?.GetString() ?? "";
                if (!Enum.TryParse<SplitBehavior>(behaviorName, out var behavior))
                    throw error($"{key}.behavior", $"unknown split behavior '{behaviorName}'");
                var invert = Bool(p, "invert", false);
                var pattern = Get(p, "pattern") ?? throw error($"{key}.pattern", "missing");
                if (Get(pattern, "Regex") is { } regex)
                {
                    try
                    {
                        return SplitStep.Regex(regex.GetString()!, behavior, invert);
                    }
                    catch (Exception e) when (e is ArgumentException or NotSupportedException)
                    {
                        throw error($"{key}.pattern.Regex", $"cannot use regex: {e.Message}");
                    }
                }
                if (Get(pattern, "String") is { } literal) return SplitStep.Literal(literal.GetString()!, behavior, invert);
                throw error($"{key}.pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
            default:
                throw error($"{key}.type", $"pre-tokenizer '{type}' is not supported (Sequence, Split, ByteLevel, Digits)");
        }
    }

    private static JsonElement? Get(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static string TypeOf(JsonElement e) => Get(e, "type")?.GetString() ?? "(no type)";

    private static bool Bool(JsonElement e, string key, bool fallback) =>
        Get(e, key) is { } v && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.False) ? v.GetBoolean() : fallback;
}
