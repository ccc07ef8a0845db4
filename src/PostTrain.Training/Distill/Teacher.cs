// The teacher contract: chat messages in, one sampled completion per request out, with the token counts and finish
// reason the output records. Implementations: LocalTeacher (a PostTrain model through the generation engine) and
// OpenAiTeacher (any OpenAI-compatible endpoint). Results come back in request order.
using PostTrain.Data.Examples;

namespace PostTrain.Training.Distill;

/// <summary>One sample to draw: the conversation (system + user) and a seed that identifies it (problem, sample).</summary>
public sealed record TeacherRequest(IReadOnlyList<ChatMessage> Messages, long Seed);

/// <summary>A drawn sample. <see cref="Error"/> is set (and Text empty) when the teacher refused this one request
/// (e.g. an HTTP 400 for a prompt too long for the endpoint); transient failures are retried, not reported here.</summary>
public sealed record TeacherSample(string Text, int PromptTokens, int CompletionTokens, string FinishReason, string? Error = null)
{
    public bool Truncated => FinishReason == "length";
}

public interface ITeacher : IDisposable
{
    /// <summary>What the output's `teacher` column records, e.g. "local:runs/sft-quickstart/final".</summary>
    string Name { get; }

    /// <summary>Requests retried since the teacher was created (0 for local teachers).</summary>
    long Retries { get; }

    /// <summary>Samples requests[first .. first + count) of a call: what the whole call would return for them (data-parallel
    /// ranks each draw their share of a shard's call).</summary>
    Task<IReadOnlyList<TeacherSample>> GenerateAsync(IReadOnlyList<TeacherRequest> requests, int first, int count, DistillSamplingConfig sampling, CancellationToken ct);

    Task<IReadOnlyList<TeacherSample>> GenerateAsync(IReadOnlyList<TeacherRequest> requests, DistillSamplingConfig sampling, CancellationToken ct) =>
        GenerateAsync(requests, 0, requests.Count, sampling, ct);
}
