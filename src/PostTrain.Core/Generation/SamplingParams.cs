// How tokens are chosen. Temperature 0 = greedy (argmax). Otherwise the logits are divided by the temperature, then
// filtered in this order: top-k, top-p (nucleus), min-p; the token is drawn from the softmax of what is left.
// Log-probabilities follow verl/TRL: log softmax(logits / temperature) at the sampled token, WITHOUT the top-k/top-p/
// min-p truncation (with temperature 0 they are plain log softmax(logits)). These are pi_old's log-probs for GRPO
// when temperature is 1.
namespace PostTrain.Core.Generation;

/// <param name="Temperature">0 = greedy; &gt; 0 scales the logits.</param>
/// <param name="TopP">Keep the smallest set of most likely tokens whose mass reaches TopP (1 = off).</param>
/// <param name="TopK">Keep the K most likely tokens (0 = off; ties with the K-th are kept).</param>
/// <param name="MinP">Drop tokens whose probability is below MinP times the top probability (0 = off).</param>
/// <param name="MaxNewTokens">Generated tokens per sequence at most (finish reason "length").</param>
/// <param name="StopTokenIds">Tokens that end a sequence (kept as its last token). null = the model config's
/// eos_token_id when it has one; an empty list = none.</param>
/// <param name="StopStrings">Texts that end a sequence once the decoded completion contains them (needs
/// <see cref="GenerationOptions.Decoder"/>). The token that completes the text is kept; text is not trimmed.</param>
/// <param name="Seed">Seeds the counter-based sampler (CounterRng): the noise for prompt i's t-th token depends only on
/// (Seed, i, t), on any device and for any batch size, chunking or compaction.</param>
/// <param name="FirstRowKey">The i above for the call's first prompt (then +1 per prompt): a data-parallel rank that
/// generates rows [k, k + n) of a global batch passes k, so its rows draw the noise they draw in one process.</param>
public sealed record SamplingParams(
    double Temperature = 1,
    double TopP = 1,
    int TopK = 0,
    double MinP = 0,
    int MaxNewTokens = 256,
    IReadOnlyList<int>? StopTokenIds = null,
    IReadOnlyList<string>? StopStrings = null,
    long Seed = 0,
    long FirstRowKey = 0)
{
    public static SamplingParams Greedy(int maxNewTokens = 256) => new(Temperature: 0, MaxNewTokens: maxNewTokens);

    public bool IsGreedy => Temperature == 0;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (double.IsNaN(Temperature) || Temperature < 0) throw new ArgumentException($"SamplingParams.Temperature must be >= 0 (got {Temperature})");
        if (double.IsNaN(TopP) || TopP <= 0 || TopP > 1) throw new ArgumentException($"SamplingParams.TopP must be in (0, 1] (got {TopP})");
        if (TopK < 0) throw new ArgumentException($"SamplingParams.TopK must be >= 0 (got {TopK})");
        if (double.IsNaN(MinP) || MinP < 0 || MinP >= 1) throw new ArgumentException($"SamplingParams.MinP must be in [0, 1) (got {MinP})");
        if (FirstRowKey is < 0 or > int.MaxValue) throw new ArgumentException($"SamplingParams.FirstRowKey must be in [0, 2^31) (got {FirstRowKey})");
        if (MaxNewTokens < 1) throw new ArgumentException($"SamplingParams.MaxNewTokens must be >= 1 (got {MaxNewTokens})");
        if (StopStrings is not null)
            for (int i = 0; i < StopStrings.Count; i++)
                if (string.IsNullOrEmpty(StopStrings[i])) throw new ArgumentException($"SamplingParams.StopStrings[{i}] is empty");
    }
}
