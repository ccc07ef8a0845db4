// Decoding model output: models often pad their embedding table past the tokenizer's vocabulary (e.g. to a multiple
// of 64), so a sampled id can lie outside it. Such ids carry no text and are skipped instead of failing the decode.
namespace PostTrain.Data.Tokenizers;

public static class TokenizerExtensions
{
    /// <summary>Decodes <paramref name="ids"/>, skipping ids outside 0..VocabSize-1.</summary>
    public static string DecodeGenerated(this ITokenizer tokenizer, ReadOnlySpan<int> ids)
    {
        int vocab = tokenizer.VocabSize;
        foreach (int id in ids)
            if ((uint)id >= (uint)vocab) return tokenizer.Decode(Valid(ids, vocab));
        return tokenizer.Decode(ids);
    }

    private static int[] Valid(ReadOnlySpan<int> ids, int vocab)
    {
        var kept = new List<int>(ids.Length);
        foreach (int id in ids) if ((uint)id < (uint)vocab) kept.Add(id);
        return [.. kept];
    }
}
