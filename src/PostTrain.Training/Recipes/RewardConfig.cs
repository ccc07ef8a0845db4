// One entry of a recipe's reward list, as grpo, distill and eval-like stages write it:
// `{name: math, weight: 1.0, options: {column: answer}}`. The list binds to List<RewardConfig>; ToSpec gives the
// reward registry's RewardSpec (options stay strings, as YAML gives them; each reward parses its own).
using PostTrain.Rewards;

namespace PostTrain.Training.Recipes;

public sealed record RewardConfig
{
    public required string Name { get; init; }
    public double Weight { get; init; } = 1.0;
    public Dictionary<string, string>? Options { get; init; }

    public RewardSpec ToSpec() => new(Name, Weight, Options?.ToDictionary(kv => kv.Key, kv => (object?)kv.Value));
}
