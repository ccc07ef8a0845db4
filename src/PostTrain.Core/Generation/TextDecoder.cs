// Token ids -> text, for stop strings. The engine decodes only a window of the last generated tokens per check.
namespace PostTrain.Core.Generation;

public interface ITextDecoder
{
    string Decode(ReadOnlySpan<int> ids);
}

/// <summary>Adapts a plain function (e.g. a tokenizer's Decode) to <see cref="ITextDecoder"/>.</summary>
public sealed class FuncTextDecoder(Func<int[], string> decode) : ITextDecoder
{
    public string Decode(ReadOnlySpan<int> ids) => decode(ids.ToArray());
}
