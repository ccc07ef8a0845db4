// Renders plain text examples (pre-training style): optional BOS/EOS around the text, every token trained.
using PostTrain.Data.Examples;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Templates;

public static class TextRenderer
{
    public static TokenizedExample Render(ITokenizer tokenizer, TextExample example, bool addBos = true, bool addEos = true)
    {
        var ids = new List<int>();
        if (addBos) ids.Add(tokenizer.BosId);
        ids.AddRange(tokenizer.Encode(example.Text));
        if (addEos) ids.Add(tokenizer.EosId);
        return new TokenizedExample([.. ids], [.. ids.Select(_ => true)]);
    }
}
