// A piece of the input during encoding: plain text still to tokenize, or an added token already matched.
namespace PostTrain.Data.Tokenizers.Hf;

internal readonly record struct TextPiece(string Text, int TokenId = -1)
{
    public bool IsToken => TokenId >= 0;
}
