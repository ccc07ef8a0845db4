// 1 when the chosen part of the completion contains a fixed text (option `text`) or the sample's column value
// (option `column`, e.g. "answer"), else 0. Null when the column is missing. Scope: completion (default), answer
// (after the last </think>) or reasoning.
namespace PostTrain.Rewards.Builtins;

public sealed class ContainsReward : IReward
{
    public const string Description = "1 if the completion (or its answer part) contains a text or a column's value, else 0";

    private readonly string? _text;
    private readonly string? _column;
    private readonly bool _ignoreCase;
    private readonly string _scope;

    public ContainsReward(string? text = null, string? column = null, bool ignoreCase = false, string scope = "completion")
    {
        if ((text is null) == (column is null))
            throw new RewardConfigException("reward 'contains': give exactly one of the options 'text' and 'column'");
        if (text is { Length: 0 }) throw new RewardConfigException("reward 'contains': option 'text' must not be empty");
        if (!CompletionParts.Scopes.Contains(scope))
            throw new RewardConfigException($"reward 'contains': option 'scope' must be one of {string.Join(", ", CompletionParts.Scopes)} (got '{scope}')");
        (_text, _column, _ignoreCase, _scope) = (text, column, ignoreCase, scope);
    }

    public string Name => "contains";

    public static ContainsReward FromOptions(RewardOptions o) =>
        new(o.StringOrNull("text"), o.StringOrNull("column"), o.Bool("ignore_case", false), o.String("scope", "completion"));

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var needle = _text ?? input.Column(_column!);
        if (string.IsNullOrEmpty(needle)) return RewardResult.NotApplicable($"column '{_column}' is missing or empty");
        var haystack = CompletionParts.Select(input, _scope) ?? "";
        var found = haystack.Contains(needle, _ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
        return new RewardResult(found ? 1.0 : 0.0, found ? "found" : "not found");
    }
}
