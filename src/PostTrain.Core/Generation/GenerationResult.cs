// What generation returns per prompt: the completion's token ids (stop token included), the log-probability of each
// sampled token (see SamplingParams for which distribution), and why it ended.
namespace PostTrain.Core.Generation;

public static class FinishReason
{
    /// <summary>A stop token was sampled or a stop string appeared.</summary>
    public const string Stop = "stop";
    /// <summary>MaxNewTokens was reached.</summary>
    public const string Length = "length";
}

/// <param name="TokenIds">Generated tokens (the prompt excluded), ending with the stop token when one stopped it.</param>
/// <param name="LogProbs">One per token: log softmax(logits / T) at that token (T = 1 when greedy), fp32.</param>
/// <param name="FinishReason"><see cref="Generation.FinishReason.Stop"/> or <see cref="Generation.FinishReason.Length"/>.</param>
/// <param name="StopTokenId">The stop token that ended it, if any.</param>
/// <param name="StopString">The stop string found in the decoded completion, if any.</param>
/// <param name="Routing">The experts every input token was routed to (GenerationOptions.RecordRouting), else null.</param>
public sealed record GenerationResult(int[] TokenIds, float[] LogProbs, string FinishReason, int? StopTokenId = null, string? StopString = null,
    RoutingTrace? Routing = null)
{
    public int Length => TokenIds.Length;
}
