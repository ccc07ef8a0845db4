// Turns one choice's tokens into text as they arrive, with OpenAI's stop semantics: the end-of-sentence token ends the
// choice and adds no text; a stop string ends it and is cut from the text (with what follows); max_tokens ends it with
// finish reason "length". Streaming needs text that never changes once sent, so two things are held back until the
// next token decides them: trailing U+FFFD (a multi-byte character whose bytes are not all there yet) and a tail that
// could be the start of a stop string. Decoding is incremental: once the decoded tail ends in a complete character,
// every byte before it is settled, so that text is kept and only later tokens are decoded again (byte-level
// tokenizers decode token by token as bytes, so the pieces concatenate to the full decode).
using PostTrain.Core.Generation;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Serve;

internal sealed class ChoiceText(ITokenizer tokenizer, int eosId, string[] stops, int maxTokens)
{
    private readonly List<int> textTokens = [];
    private int sent;          // characters of the decoded text already handed out
    private int settledTokens; // textTokens[..settledTokens] decode to settledText, for good
    private string settledText = "";

    public int Generated { get; private set; }
    public string? Finish { get; private set; }

    /// <summary>Adds a generated token; returns the text it releases (possibly empty).</summary>
    public string Add(int token)
    {
        if (Finish is not null) return "";
        Generated++;
        if (token == eosId)
        {
            Finish = FinishReason.Stop;
            var all = Text();
            return Release(all, all.Length);
        }
        textTokens.Add(token);
        var text = Text();
        int end = text.Length;
        foreach (var stop in stops)
        {
            int at = text.IndexOf(stop, sent, StringComparison.Ordinal);
            if (at >= 0 && at < end) { end = at; Finish = FinishReason.Stop; }
        }
        if (Finish is not null) return Release(text, end);
        if (Generated >= maxTokens)
        {
            Finish = FinishReason.Length;
            return Release(text, text.Length);
        }
        int stable = text.Length;
        while (stable > sent && text[stable - 1] == '\uFFFD') stable--;
        return Release(text, stable - StopPrefixTail(text, stable));
    }

    /// <summary>Ends the choice where it is (the engine stopped it without a reason seen here): releases all text.</summary>
    public string End(string reason)
    {
        if (Finish is not null) return "";
        Finish = reason;
        var text = Text();
        return Release(text, text.Length);
    }

    /// <summary>The decoded text of all tokens so far (settling what can no longer change).</summary>
    private string Text()
    {
        var tail = tokenizer.DecodeGenerated(textTokens.GetRange(settledTokens, textTokens.Count - settledTokens).ToArray());
        if (tail.Length == 0 || tail[^1] == '\uFFFD') return settledText + tail;
        settledText += tail;
        settledTokens = textTokens.Count;
        return settledText;
    }

    private string Release(string text, int end)
    {
        if (end <= sent) return "";
        var delta = text[sent..end];
        sent = end;
        return delta;
    }

    /// <summary>Length of the longest tail of text[..end] (after what was sent) that is a proper prefix of a stop string.</summary>
    private int StopPrefixTail(string text, int end)
    {
        int best = 0;
        foreach (var stop in stops)
            for (int k = Math.Min(stop.Length - 1, end - sent); k > best; k--)
                if (string.CompareOrdinal(text, end - k, stop, 0, k) == 0) { best = k; break; }
        return best;
    }
}
