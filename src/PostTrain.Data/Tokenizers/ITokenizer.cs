// The tokenizer contract: text to ids and back. Encode never adds BOS/EOS on its own (chat templates add
// them); special-token strings that appear in the text encode as their single id.
namespace PostTrain.Data.Tokenizers;

public interface ITokenizer
{
    /// <summary>Number of ids (the largest id + 1): the size of the model's embedding table.</summary>
    int VocabSize { get; }

    int BosId { get; }
    int EosId { get; }
    int PadId { get; }

    /// <summary>Ids of the text, without added BOS/EOS. Special-token strings in the text become their id.</summary>
    int[] Encode(string text);

    /// <summary>Text of the ids; special tokens are written out; invalid UTF-8 becomes U+FFFD.</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>The id of a token string (a special token or a vocabulary entry), or null.</summary>
    int? TokenToId(string token);

    /// <summary>The token string of an id, or null when the id is out of range.</summary>
    string? IdToToken(int id);
}
