// The text of a generated completion as rewards, distillation filters and evaluation see it: the ids without the
// end-of-sequence token that stopped it, and without ids past the tokenizer's vocabulary (models pad their embedding
// table, e.g. 264 rows for the 263 byte-tokenizer ids, and such ids have no text).
using PostTrain.Core.Generation;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Runtime;

public static class CompletionText
{
    public static string Decode(ITokenizer tokenizer, GenerationResult r)
    {
        int n = r.StopTokenId is not null ? r.TokenIds.Length - 1 : r.TokenIds.Length;
        var ids = r.TokenIds.Take(n).Where(id => id >= 0 && id < tokenizer.VocabSize).ToArray();
        return tokenizer.Decode(ids);
    }
}
