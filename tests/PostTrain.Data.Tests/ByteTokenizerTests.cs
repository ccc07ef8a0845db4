// ByteTokenizer: UTF-8 bytes as ids, special tokens as single ids, lossless round trip.
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Tests;

public sealed class ByteTokenizerTests
{
    private static readonly ByteTokenizer Tok = ByteTokenizer.Instance;

    [Fact]
    public void Ids_are_utf8_bytes()
    {
        Assert.Equal([104, 105], Tok.Encode("hi"));
        Assert.Equal([0xC3, 0xA9], Tok.Encode("é"));
        Assert.Equal([0xF0, 0x9F, 0x98, 0x80], Tok.Encode("😀"));
        Assert.Empty(Tok.Encode(""));
    }

    [Fact]
    public void Special_token_strings_encode_as_single_ids()
    {
        Assert.Equal(263, Tok.VocabSize);
        Assert.Equal((256, 257, 258), (Tok.PadId, Tok.BosId, Tok.EosId));
        var ids = Tok.Encode("<｜User｜>a<think>b</think><｜end▁of▁sentence｜><x");

        Assert.Equal([259, 97, 261, 98, 262, 258, 60, 120], ids);
        Assert.Equal(260, Tok.TokenToId(DeepSeekTokens.Assistant));
        Assert.Equal(256, Tok.TokenToId("<|pad|>"));
        Assert.Equal(10, Tok.TokenToId("<0x0A>"));
        Assert.Equal(97, Tok.TokenToId("a"));
        Assert.Null(Tok.TokenToId("ab"));
        Assert.Equal("<｜begin▁of▁sentence｜>", Tok.IdToToken(257));
        Assert.Null(Tok.IdToToken(263));
    }

    [Theory]
    [InlineData("plain ascii")]
    [InlineData("ünïcödé 漢字 😀👩‍👩‍👧 \t\n  x")]
    [InlineData("<｜begin▁of▁sentence｜>sys<｜User｜>q<｜Assistant｜><think>r</think>a<｜end▁of▁sentence｜><|pad|>")]
    public void Round_trip_is_lossless(string text) => Assert.Equal(text, Tok.Decode(Tok.Encode(text)));

    [Fact]
    public void Invalid_utf8_decodes_to_replacement_char()
    {
        Assert.Equal("a\uFFFDb", Tok.Decode([97, 0xC3, 98]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.Decode([300]));
    }
}
