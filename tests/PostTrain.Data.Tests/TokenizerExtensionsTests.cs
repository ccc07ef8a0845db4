using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Tests;

public sealed class TokenizerExtensionsTests
{
    [Fact]
    public void GeneratedIdsPastTheVocabularyAreSkipped()
    {
        var tok = ByteTokenizer.Instance;   // 263 ids
        Assert.Equal("hi", tok.DecodeGenerated([104, 263, 105, 9999]));
        Assert.Equal("hi", tok.DecodeGenerated([104, 105]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([104, 263]));
    }
}
