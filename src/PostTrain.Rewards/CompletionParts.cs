// Splits a completion into its reasoning (inside <think>...</think>) and its answer (after the last </think>).
// Simplifications: the reasoning runs from the first open tag to the first close tag; when the chat template already
// put the open tag at the end of the prompt (DeepSeek-R1 templates do), the reasoning starts at the completion's start.
// Without any close tag: an open tag (or a prefilled one) means the reasoning never ended (answer empty); otherwise
// the whole completion is the answer and there is no reasoning.
namespace PostTrain.Rewards;

public readonly record struct CompletionParts(string? Reasoning, string Answer)
{
    public const string DefaultOpen = "<think>";
    public const string DefaultClose = "</think>";

    public static CompletionParts Split(RewardInput input, string open = DefaultOpen, string close = DefaultClose) =>
        Split(input.Prompt, input.Completion, open, close);

    public static CompletionParts Split(string prompt, string completion, string open = DefaultOpen, string close = DefaultClose)
    {
        var firstClose = completion.IndexOf(close, StringComparison.Ordinal);
        var firstOpen = completion.IndexOf(open, StringComparison.Ordinal);
        var prefilled = PromptOpensReasoning(prompt, open);
        if (firstClose < 0)
            return firstOpen >= 0 ? new(completion[(firstOpen + open.Length)..], "")
                : prefilled ? new(completion, "")
                : new(null, completion);
        var start = firstOpen >= 0 && firstOpen < firstClose ? firstOpen + open.Length : 0;
        var lastClose = completion.LastIndexOf(close, StringComparison.Ordinal);
        return new(completion[start..firstClose], completion[(lastClose + close.Length)..]);
    }

    /// <summary>True when the prompt ends with the open tag (the template prefilled it), ignoring trailing whitespace.</summary>
    public static bool PromptOpensReasoning(string prompt, string open) =>
        open.Length > 0 && prompt.TrimEnd().EndsWith(open, StringComparison.Ordinal);

    /// <summary>The text a reward looks at: "completion" (all of it), "reasoning" or "answer".</summary>
    public static string? Select(RewardInput input, string scope, string open = DefaultOpen, string close = DefaultClose) => scope switch
    {
        "completion" => input.Completion,
        "reasoning" => Split(input, open, close).Reasoning,
        "answer" => Split(input, open, close).Answer,
        _ => throw new ArgumentException($"unknown scope '{scope}' (completion, reasoning, answer)", nameof(scope)),
    };

    public static readonly string[] Scopes = ["completion", "reasoning", "answer"];
}
