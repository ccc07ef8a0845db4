// Streaming text of one choice, against the tokenizer's full decode: deltas concatenate to it, are never taken back,
// hold back partial characters and possible stop-string starts, and a stop string is cut with what follows.
using System.Text;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Serve.Tests;

public sealed class ChoiceTextTests
{
    private static readonly ByteTokenizer Tok = ByteTokenizer.Instance;

    private static (List<string> Deltas, ChoiceText Choice) Feed(int[] tokens, string[] stops, int maxTokens = 1000)
    {
        var c = new ChoiceText(Tok, Tok.EosId, stops, maxTokens);
        var deltas = new List<string>();
        foreach (var t in tokens)
        {
            deltas.Add(c.Add(t));
            if (c.Finish is not null) break;
        }
        return (deltas, c);
    }

    [Fact]
    public void RandomBytesConcatenateToTheFullDecodeAndNeverTakeTextBack()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 50; trial++)
        {
            var tokens = Enumerable.Range(0, 40).Select(_ => rng.Next(0, 256)).ToArray();
            var (deltas, c) = Feed(tokens, [], maxTokens: tokens.Length);
            string full = Tok.DecodeGenerated(tokens);
            Assert.Equal(full, string.Concat(deltas));
            Assert.Equal("length", c.Finish);   // the 40th token reached max_tokens and released everything held back
            for (int k = 1; k < tokens.Length; k++)   // what was out after k tokens is a prefix of the final text
                Assert.StartsWith(string.Concat(deltas.Take(k)), full, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void MultiByteCharactersAreReleasedWhole()
    {
        var tokens = Encoding.UTF8.GetBytes("é😀x").Select(b => (int)b).ToArray();   // 2 + 4 + 1 bytes
        var (deltas, _) = Feed(tokens, []);
        Assert.Equal(["", "é", "", "", "", "😀", "x"], deltas);
    }

    [Fact]
    public void StopStringIsCutAndItsPossibleStartIsHeldBack()
    {
        var tokens = Encoding.UTF8.GetBytes("ab<ENDx<END>tail").Select(b => (int)b).ToArray();
        var (deltas, c) = Feed(tokens, ["<END>"]);
        Assert.Equal("ab<ENDx", string.Concat(deltas));
        Assert.Equal("stop", c.Finish);
        Assert.Equal(12, c.Generated);                               // up to the '>' that completes the stop string
        Assert.Equal("ab", string.Concat(deltas.Take(6)));           // "<END" was held back until 'x' ruled it out
        Assert.Equal("<ENDx", deltas[6]);
    }

    [Fact]
    public void EndOfSentenceAddsNoTextAndMaxTokensGivesLength()
    {
        var (deltas, c) = Feed([.. Encoding.UTF8.GetBytes("hi<").Select(b => (int)b), Tok.EosId], ["<x"]);
        Assert.Equal("hi<", string.Concat(deltas));                 // the held-back "<" is released at the end
        Assert.Equal(("stop", 4), (c.Finish, c.Generated));
        var (d2, c2) = Feed([104, 105, 106], [], maxTokens: 2);
        Assert.Equal("hi", string.Concat(d2));
        Assert.Equal(("length", 2), (c2.Finish, c2.Generated));
    }
}
