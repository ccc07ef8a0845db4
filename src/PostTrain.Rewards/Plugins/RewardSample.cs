// What a C# script plugin (rewards/*.csx) receives: the sample's prompt, completion and other columns, with the
// completion already split into reasoning (inside <think>...</think>) and answer (after </think>).
namespace PostTrain.Rewards.Plugins;

public sealed class RewardSample(RewardInput input)
{
    public string Prompt => input.Prompt;
    public string Completion => input.Completion;

    /// <summary>The dataset row's other columns (strings, numbers, booleans, lists).</summary>
    public IReadOnlyDictionary<string, object?> Columns => input.Columns;

    /// <summary>A column as text (numbers formatted invariantly); null when absent.</summary>
    public string? Column(string name) => input.Column(name);

    /// <summary>The text inside &lt;think&gt;...&lt;/think&gt;; null when there is none.</summary>
    public string? Reasoning => CompletionParts.Split(input).Reasoning;

    /// <summary>The text after the last &lt;/think&gt; (the whole completion when there are no think tags).</summary>
    public string Answer => CompletionParts.Split(input).Answer;
}
