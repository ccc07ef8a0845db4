// One request on its way through the scheduler: its rows (prompt i's j-th sample is choice i * n + j, as OpenAI
// numbers them), the text state of each choice, and the channel of events the HTTP side reads (a text delta and/or a
// token per generated token, a choice's finish, then done or failed).
using System.Threading.Channels;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Serve;

internal readonly record struct TokenLogProb(int Token, float LogProb);

internal abstract record ServeEvent;
/// <summary>What one token of a choice released: text (possibly empty), the token with its log-prob (null for the
/// end-of-sentence token, which has no text), and the finish reason when the choice ended with it.</summary>
internal sealed record ChoiceEvent(int Choice, string Text, TokenLogProb? Token, string? Finish) : ServeEvent;
internal sealed record DoneEvent(int PromptTokens, int CompletionTokens) : ServeEvent;
internal sealed record FailedEvent(ApiException Error) : ServeEvent;

internal sealed class Job
{
    private readonly int eosId;

    public Job(ServeRequest request, ITokenizer tokenizer, CancellationToken aborted)
    {
        Request = request;
        Aborted = aborted;
        eosId = tokenizer.EosId;
        Choices = Enumerable.Range(0, request.Prompts.Count * request.N)
            .Select(_ => new ChoiceText(tokenizer, eosId, request.Stop, request.MaxTokens)).ToArray();
    }

    public ServeRequest Request { get; }
    /// <summary>Stopwatch timestamp of the submission (queue wait metric).</summary>
    public long SubmittedAt { get; } = System.Diagnostics.Stopwatch.GetTimestamp();
    public ChoiceText[] Choices { get; }
    public CancellationToken Aborted { get; }
    public Channel<ServeEvent> Events { get; } = Channel.CreateUnbounded<ServeEvent>(new UnboundedChannelOptions { SingleReader = true });
    public int Rows => Choices.Length;
    public int[] PromptOf(int row) => Request.Prompts[row / Request.N];

    /// <summary>Scheduler thread, per generated token; false = stop generating this row.</summary>
    public bool OnToken(int row, int token, float logProb)
    {
        if (Aborted.IsCancellationRequested) return false;
        var c = Choices[row];
        if (c.Finish is not null) return false;
        var text = c.Add(token);
        Events.Writer.TryWrite(new ChoiceEvent(row, text, token == eosId ? null : new TokenLogProb(token, logProb), c.Finish));
        return c.Finish is null;
    }

    public void Complete()
    {
        for (int i = 0; i < Choices.Length; i++)
            if (Choices[i].Finish is null)
            {
                var text = Choices[i].End(PostTrain.Core.Generation.FinishReason.Length);
                Events.Writer.TryWrite(new ChoiceEvent(i, text, null, Choices[i].Finish));
            }
        Events.Writer.TryWrite(new DoneEvent(Request.Prompts.Sum(p => p.Length), Choices.Sum(c => c.Generated)));
        Events.Writer.TryComplete();
    }

    public void Fail(ApiException error)
    {
        Events.Writer.TryWrite(new FailedEvent(error));
        Events.Writer.TryComplete();
    }
}
