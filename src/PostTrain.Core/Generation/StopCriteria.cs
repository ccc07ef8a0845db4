// Host-side bookkeeping of one sequence and the rules that end it: a stop token (kept as the last token), a stop
// string in the decoded completion (only a window of the last tokens is decoded: 4 tokens per character of the
// longest stop string plus 4, enough for byte-level tokenizers), or MaxNewTokens (finish reason "length").
namespace PostTrain.Core.Generation;

/// <summary>Called on the generating thread for each token appended to a row, in order: the row's prompt index in the
/// Generate call, the token and its log-prob (as in <see cref="GenerationResult"/>), after the engine's own stop rules
/// ran. Return false to end that row after this token (finish reason "stop"; ignored when the row already ended).</summary>
public delegate bool TokenCallback(int promptIndex, int token, float logProb);

internal sealed class SequenceState(int promptIndex)
{
    public int PromptIndex { get; } = promptIndex;
    public List<int> Tokens { get; } = new();
    public List<float> LogProbs { get; } = new();
    public string? Finish { get; set; }
    public int? StopToken { get; set; }
    public string? StopString { get; set; }
    public bool Done => Finish is not null;
    /// <summary>The prompt's length in tokens (for reading its routing from the cache).</summary>
    public int PromptLength { get; init; }
    public RoutingTrace? Routing { get; set; }

    public GenerationResult ToResult() =>
        new([.. Tokens], [.. LogProbs], Finish ?? FinishReason.Length, StopToken, StopString, Routing);
}

internal sealed class StopCriteria
{
    private readonly HashSet<int> stopIds;
    private readonly string[] stopStrings;
    private readonly ITextDecoder? decoder;
    private readonly int window;
    private readonly int maxNew;
    private readonly TokenCallback? onToken;

    public StopCriteria(IReadOnlyList<int> stopIds, IReadOnlyList<string>? stopStrings, ITextDecoder? decoder, int maxNewTokens,
        TokenCallback? onToken = null)
    {
        this.onToken = onToken;
        this.stopIds = [.. stopIds];
        this.stopStrings = stopStrings?.ToArray() ?? [];
        if (this.stopStrings.Length > 0 && decoder is null)
            throw new ArgumentException("SamplingParams.StopStrings needs GenerationOptions.Decoder (a token-id -> text decoder)");
        this.decoder = decoder;
        window = this.stopStrings.Length == 0 ? 0 : 4 * this.stopStrings.Max(s => s.Length) + 4;
        maxNew = maxNewTokens;
    }

    /// <summary>Appends a sampled token; returns true when the sequence is now finished.</summary>
    public bool Append(SequenceState s, int token, float logProb)
    {
        if (s.Done) return true;
        s.Tokens.Add(token);
        s.LogProbs.Add(logProb);
        if (stopIds.Contains(token))
        {
            s.Finish = FinishReason.Stop;
            s.StopToken = token;
        }
        else if (stopStrings.Length > 0)
        {
            int n = Math.Min(window, s.Tokens.Count);
            var text = decoder!.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(s.Tokens)[^n..]);
            foreach (var stop in stopStrings)
                if (text.Contains(stop, StringComparison.Ordinal)) { s.Finish = FinishReason.Stop; s.StopString = stop; break; }
        }
        if (!s.Done && s.Tokens.Count >= maxNew) s.Finish = FinishReason.Length;
        if (onToken is not null && !onToken(s.PromptIndex, token, logProb) && !s.Done) s.Finish = FinishReason.Stop;
        return s.Done;
    }
}
