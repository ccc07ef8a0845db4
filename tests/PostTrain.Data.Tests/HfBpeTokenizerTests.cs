// HfBpeTokenizer on a hand-made tokenizer.json: ids worked out by hand from the merges and the
// DeepSeek-V3 pre-tokenizer, plus the pre-tokenizer pieces on text outside the BMP.
using System.Text.Json.Nodes;
using PostTrain.Data.Tokenizers.Hf;

namespace PostTrain.Data.Tests;

public sealed class HfBpeTokenizerTests
{
    private static readonly HfBpeTokenizer Tok = HandTokenizer.Create();

    [Theory]
    // "the" -> t h e -> t he (rank 1); " the" -> Ġ t h e -> Ġt h e (rank 0) -> Ġt he -> Ġthe (rank 2)
    [InlineData("the the", new[] { 116, 257, 258 })]
    // digits split in threes first: "123" -> 12 3, "45" -> 4 5
    [InlineData("12345", new[] { 259, 51, 52, 53 })]
    [InlineData("<｜User｜>hi<｜end▁of▁sentence｜>", new[] { HandTokenizer.User, 104, 105, HandTokenizer.Eos })]
    [InlineData("a😀b", new[] { 97, 0xF0, 0x9F, 0x98, 0x80, 98 })]
    // the <mask> token keeps its neighbours' spaces as text: "a", " " | <mask> | " b" -> Ġb
    [InlineData("a <mask> b", new[] { 97, 32, HandTokenizer.Mask, 32, 98 })]
    // single_word "cat": matched alone, not inside "concat"
    [InlineData("cat concat", new[] { HandTokenizer.Cat, 32, 99, 111, 110, 99, 97, 116 })]
    [InlineData("", new int[0])]
    public void Encodes_hand_computed_ids(string text, int[] expected) => Assert.Equal(expected, Tok.Encode(text));

    [Fact]
    public void Lstrip_and_rstrip_swallow_spaces_into_the_added_token()
    {
        Assert.Equal([97, HandTokenizer.Mask, 32, 98], HandTokenizer.Create(maskLStrip: true).Encode("a <mask> b"));
        Assert.Equal([97, 32, HandTokenizer.Mask, 98], HandTokenizer.Create(maskRStrip: true).Encode("a <mask> b"));
    }

    [Fact]
    public void Special_ids_vocab_size_and_lookups()
    {
        Assert.Equal(265, Tok.VocabSize);
        Assert.Equal(HandTokenizer.Bos, Tok.BosId);
        Assert.Equal(HandTokenizer.Eos, Tok.EosId);
        Assert.Equal(HandTokenizer.Eos, Tok.PadId); // no pad token in this vocabulary: EOS pads
        Assert.Equal(258, Tok.TokenToId("Ġthe"));
        Assert.Equal("Ġthe", Tok.IdToToken(258));
        Assert.Null(Tok.TokenToId("zzz"));
    }

    [Theory]
    [InlineData("the the 12345 <｜User｜>x")]
    [InlineData("Grüße, 世界! 😀👩‍👩‍👧 \t\r\n  done  ")]
    public void Decode_inverts_encode(string text) => Assert.Equal(text, Tok.Decode(Tok.Encode(text)));

    [Fact]
    public void Regex_split_sees_code_points_not_utf16_halves()
    {
        var split = SplitStep.Regex(HandTokenizer.WordPattern, SplitBehavior.Isolated, invert: false);
        string[] Pieces(string text)
        {
            var output = new List<string>();
            split.Split(text, output);
            return [.. output];
        }

        // U+1F600 is a symbol (So): " ?[\p{P}\p{S}]+" takes it whole; as UTF-16 halves it would glue to "abc".
        Assert.Equal(["😀", "abc"], Pieces("😀abc"));
        // U+1D465 (math italic x) is a letter: " 𝑥y" is one word.
        Assert.Equal(["x", " 𝑥y"], Pieces("x 𝑥y"));
        Assert.Equal(["Hello", ",", " world", "\n\n", "  ", " x"], Pieces("Hello, world\n\n   x"));
    }

    [Theory]
    [InlineData("Removed", new[] { "a", "b", "c" })]
    [InlineData("Isolated", new[] { "a", "-", "b", "-", "-", "c" })]
    [InlineData("MergedWithPrevious", new[] { "a-", "b-", "-", "c" })]
    [InlineData("MergedWithNext", new[] { "a", "-b", "-", "-c" })]
    [InlineData("Contiguous", new[] { "a", "-", "b", "--", "c" })]
    public void Split_behaviors_match_tokenizers(string behavior, string[] expected)
    {
        var output = new List<string>();
        SplitStep.Literal("-", Enum.Parse<SplitBehavior>(behavior), invert: false).Split("a-b--c", output);
        Assert.Equal(expected, output);
    }

    [Fact]
    public void Gpt2_byte_level_split()
    {
        var output = new List<string>();
        new ByteLevelStep(addPrefixSpace: false, useRegex: true).Split("Hello world's  x", output);
        Assert.Equal(["Hello", "Ġworld", "'s", "Ġ", "Ġx"], output);
    }

    [Theory]
    [InlineData("pre_tokenizer", """{"type": "Metaspace", "replacement": "▁"}""", "pre_tokenizer.type")]
    [InlineData("normalizer", """{"type": "Lowercase"}""", "normalizer.type")]
    [InlineData("decoder", """{"type": "Metaspace"}""", "decoder.type")]
    public void Unsupported_parts_fail_naming_the_key(string key, string json, string column)
    {
        var doc = HandTokenizer.Json();
        doc[key] = JsonNode.Parse(json);
        var e = Assert.Throws<DataException>(() => HfBpeTokenizer.FromJson(doc.ToJsonString(), "t.json"));
        Assert.Equal(column, e.Column);
        Assert.StartsWith("t.json, column", e.Message);
    }

    [Fact]
    public void Merge_of_unknown_token_fails_naming_the_merge()
    {
        var doc = HandTokenizer.Json();
        ((JsonArray)doc["model"]!["merges"]!).Add(new JsonArray("Ġthe", "zz"));
        var e = Assert.Throws<DataException>(() => HfBpeTokenizer.FromJson(doc.ToJsonString(), "t.json"));
        Assert.Contains("merge 4", e.Message);
        Assert.Contains("'zz' is not in the vocabulary", e.Message);
    }

    [Fact]
    public void Load_reads_special_token_names_from_tokenizer_config()
    {
        using var dir = new TempDir();
        dir.File("tokenizer.json", HandTokenizer.Json().ToJsonString());
        dir.File("tokenizer_config.json", """{"bos_token": {"content": "<｜User｜>"}, "eos_token": "<mask>", "pad_token": null}""");

        var tok = HfBpeTokenizer.Load(dir.Path);

        Assert.Equal(HandTokenizer.User, tok.BosId);
        Assert.Equal(HandTokenizer.Mask, tok.EosId);
        Assert.Equal(HandTokenizer.Mask, tok.PadId);
    }
}
