// A tiny hand-made DeepSeek-V3-style tokenizer.json for HfBpeTokenizer tests: the 256 byte-level chars
// with id = byte value, four merges, and added tokens. Ids of any text can be worked out by hand.
using System.Text.Json.Nodes;
using PostTrain.Data.Tokenizers.Hf;

namespace PostTrain.Data.Tests;

internal static class HandTokenizer
{
    public const string NumberPattern = @"\p{N}{1,3}";
    public const string CjkPattern = "[一-龥\u3040-ゟ゠-ヿ]+";
    public const string WordPattern = """[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""";

    // merges by rank: (Ġ t) -> 256 "Ġt", (h e) -> 257 "he", (Ġt he) -> 258 "Ġthe", (1 2) -> 259 "12"
    public const int Bos = 260, Eos = 261, User = 262, Mask = 263, Cat = 264;

    public static HfBpeTokenizer Create(bool maskLStrip = false, bool maskRStrip = false) =>
        HfBpeTokenizer.FromJson(Json(maskLStrip, maskRStrip).ToJsonString(), "hand-tokenizer.json");

    public static JsonObject Json(bool maskLStrip = false, bool maskRStrip = false)
    {
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++) vocab[ByteLevelAlphabet.ByteToChar[b].ToString()] = b;
        vocab["Ġt"] = 256;
        vocab["he"] = 257;
        vocab["Ġthe"] = 258;
        vocab["12"] = 259;

        JsonObject Split(string pattern) => new()
        {
            ["type"] = "Split",
            ["pattern"] = new JsonObject { ["Regex"] = pattern },
            ["behavior"] = "Isolated",
            ["invert"] = false,
        };
        JsonObject Added(int id, string content, bool special, bool lstrip = false, bool rstrip = false, bool singleWord = false) => new()
        {
            ["id"] = id, ["content"] = content, ["single_word"] = singleWord, ["lstrip"] = lstrip, ["rstrip"] = rstrip,
            ["normalized"] = !special, ["special"] = special,
        };

        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                Added(Bos, "<｜begin▁of▁sentence｜>", true), Added(Eos, "<｜end▁of▁sentence｜>", true),
                Added(User, "<｜User｜>", false), Added(Mask, "<mask>", true, maskLStrip, maskRStrip),
                Added(Cat, "cat", false, singleWord: true)),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(Split(NumberPattern), Split(CjkPattern), Split(WordPattern),
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(new JsonArray("Ġ", "t"), "h e", new JsonArray("Ġt", "he"), new JsonArray("1", "2")),
            },
        };
    }
}
