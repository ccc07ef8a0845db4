// HfBpeTokenizer against Hugging Face `tokenizers` itself: ids recorded by scripts/gpu/bpe/make_bpe_fixture.py
// (tokenizers is Python-only, so the fixture is made on the GPU machine and committed). The test fails,
// never skips, while the fixture is missing. Category NeedsFixture.
using System.Text.Json;
using PostTrain.Data.Tokenizers;
using PostTrain.Data.Tokenizers.Hf;

namespace PostTrain.Data.Tests;

public sealed class HfFixtureTests
{
    private static string FixtureDir(string variant) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "bpe", variant);

    [Fact]
    [Trait("Category", "NeedsFixture")]
    public void DeepSeek_v3_style_tokenizer_matches_hf_tokenizers_exactly()
    {
        var (tokenizer, cases) = Load("", names: null);
        Assert.Equal(tokenizer.TokenToId("<｜begin▁of▁sentence｜>"), tokenizer.BosId); // from tokenizer_config.json
        Assert.Equal(tokenizer.TokenToId("<｜▁pad▁｜>"), tokenizer.PadId);
        foreach (var c in cases)
        {
            Assert.True(c.Ids.SequenceEqual(tokenizer.Encode(c.Text)), $"ids differ for {JsonSerializer.Serialize(c.Text)}");
            Assert.True(c.Decoded == tokenizer.Decode(c.Ids), $"decode differs for {JsonSerializer.Serialize(c.Text)}");
        }
    }

    /// <summary>NFC normalizer: under InvariantGlobalization text NFC might change is refused (NotSupportedException),
    /// everything else must match exactly.</summary>
    [Fact]
    [Trait("Category", "NeedsFixture")]
    public void Qwen2_style_tokenizer_matches_hf_tokenizers_or_refuses()
    {
        var (tokenizer, cases) = Load("qwen2_style", new SpecialTokenNames("<|endoftext|>", "<|im_end|>"));
        var refused = 0;
        foreach (var c in cases)
        {
            int[] ids;
            try
            {
                ids = tokenizer.Encode(c.Text);
            }
            catch (NotSupportedException)
            {
                refused++;
                continue;
            }
            Assert.True(c.Ids.SequenceEqual(ids), $"ids differ for {JsonSerializer.Serialize(c.Text)}");
            Assert.True(c.Decoded == tokenizer.Decode(c.Ids), $"decode differs for {JsonSerializer.Serialize(c.Text)}");
        }
        Assert.True(refused <= cases.Count / 4, $"{refused} of {cases.Count} texts refused");
    }

    private static (HfBpeTokenizer Tokenizer, List<Case> Cases) Load(string variant, SpecialTokenNames? names)
    {
        var dir = FixtureDir(variant);
        var expected = Path.Combine(dir, "expected.json");
        if (!File.Exists(expected) || !File.Exists(Path.Combine(dir, "tokenizer.json")))
            Assert.Fail($"BPE fixture missing at {dir}: run `python scripts/gpu/bpe/make_bpe_fixture.py " +
                "tests/PostTrain.Data.Tests/Fixtures/bpe` where Hugging Face tokenizers is installed and commit the output.");
        var cases = JsonSerializer.Deserialize<List<Case>>(File.ReadAllText(expected), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        Assert.True(cases.Count > 100, $"only {cases.Count} cases in {expected}");
        return (HfBpeTokenizer.Load(dir, names), cases);
    }

    private sealed record Case(string Text, int[] Ids, string Decoded);
}
