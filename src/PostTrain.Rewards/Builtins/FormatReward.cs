// The DeepSeek-R1 format reward: 1 when the completion is "<think> reasoning </think> answer" with exactly one pair of
// think tags, non-blank reasoning and a non-blank answer after the close tag; 0 otherwise (the reason says which rule
// failed). Tags are configurable; optional answer tags (e.g. <answer>...</answer>) must then wrap the answer.
// When the prompt already ends with the open tag (R1 chat templates prefill "<think>\n"), the completion is read as if
// it began with that tag.
namespace PostTrain.Rewards.Builtins;

public sealed class FormatReward : IReward
{
    public const string Description = "1 if the completion is <think>reasoning</think> followed by a non-empty answer, else 0 (R1 format)";

    private readonly string _thinkOpen, _thinkClose;
    private readonly string? _answerOpen, _answerClose;

    public FormatReward(string thinkOpen = "<think>", string thinkClose = "</think>", string? answerOpen = null, string? answerClose = null)
    {
        if ((answerOpen is null) != (answerClose is null))
            throw new RewardConfigException("reward 'format': give both answer_open and answer_close, or neither");
        if (thinkOpen.Length == 0 || thinkClose.Length == 0 || answerOpen is { Length: 0 } || answerClose is { Length: 0 })
            throw new RewardConfigException("reward 'format': tags must not be empty");
        (_thinkOpen, _thinkClose, _answerOpen, _answerClose) = (thinkOpen, thinkClose, answerOpen, answerClose);
    }

    public string Name => "format";

    public static FormatReward FromOptions(RewardOptions o) => new(o.String("think_open", "<think>"), o.String("think_close", "</think>"),
        o.StringOrNull("answer_open"), o.StringOrNull("answer_close"));

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var text = input.Completion;
        if (CompletionParts.PromptOpensReasoning(input.Prompt, _thinkOpen) && !text.TrimStart().StartsWith(_thinkOpen, StringComparison.Ordinal))
            text = _thinkOpen + text;
        var failure = Check(text);
        return new RewardResult(failure is null ? 1.0 : 0.0, failure ?? "ok");
    }

    private string? Check(string text)
    {
        if (!text.TrimStart().StartsWith(_thinkOpen, StringComparison.Ordinal)) return $"does not start with {_thinkOpen}";
        var opens = TextCount.Occurrences(text, _thinkOpen);
        var closes = TextCount.Occurrences(text, _thinkClose);
        if (opens != 1) return $"{_thinkOpen} occurs {opens} times";
        if (closes != 1) return $"{_thinkClose} occurs {closes} times";
        var open = text.IndexOf(_thinkOpen, StringComparison.Ordinal);
        var close = text.IndexOf(_thinkClose, StringComparison.Ordinal);
        if (close < open) return $"{_thinkClose} comes before {_thinkOpen}";
        if (string.IsNullOrWhiteSpace(text[(open + _thinkOpen.Length)..close])) return "empty reasoning";
        var answer = text[(close + _thinkClose.Length)..].Trim();
        if (answer.Length == 0) return $"no answer after {_thinkClose}";
        if (_answerOpen is null || _answerClose is null) return null;
        if (!answer.StartsWith(_answerOpen, StringComparison.Ordinal) || !answer.EndsWith(_answerClose, StringComparison.Ordinal)
            || TextCount.Occurrences(answer, _answerOpen) != 1 || TextCount.Occurrences(answer, _answerClose) != 1)
            return $"answer is not wrapped once in {_answerOpen}...{_answerClose}";
        if (answer.Length < _answerOpen.Length + _answerClose.Length
            || string.IsNullOrWhiteSpace(answer[_answerOpen.Length..^_answerClose.Length])) return "empty answer";
        return null;
    }
}
