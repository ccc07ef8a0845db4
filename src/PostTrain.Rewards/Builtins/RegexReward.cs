// 1 when the regular expression matches the chosen part of the completion, else 0. .NET regex syntax; a match
// timeout (default 1 s, option timeout_ms) turns a catastrophic pattern into a counted error, not a hang.
using System.Text.RegularExpressions;

namespace PostTrain.Rewards.Builtins;

public sealed class RegexReward : IReward
{
    public const string Description = "1 if a regular expression matches the completion (or its answer/reasoning part), else 0";

    private readonly Regex _regex;
    private readonly string _scope;

    public RegexReward(string pattern, bool ignoreCase = false, string scope = "completion", int timeoutMs = 1000)
    {
        if (!CompletionParts.Scopes.Contains(scope))
            throw new RewardConfigException($"reward 'regex': option 'scope' must be one of {string.Join(", ", CompletionParts.Scopes)} (got '{scope}')");
        try
        {
            var options = RegexOptions.CultureInvariant | RegexOptions.Singleline | (ignoreCase ? RegexOptions.IgnoreCase : 0);
            _regex = new Regex(pattern, options, TimeSpan.FromMilliseconds(timeoutMs));
        }
        catch (ArgumentException e)
        {
            throw new RewardConfigException($"reward 'regex': bad pattern '{pattern}': {e.Message}", e);
        }
        _scope = scope;
    }

    public string Name => "regex";

    public static RegexReward FromOptions(RewardOptions o) =>
        new(o.StringOrNull("pattern") ?? throw new RewardConfigException("reward 'regex': option 'pattern' is required"),
            o.Bool("ignore_case", false), o.String("scope", "completion"), o.Int("timeout_ms", 1000));

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var found = _regex.IsMatch(CompletionParts.Select(input, _scope) ?? "");
        return new RewardResult(found ? 1.0 : 0.0, found ? "matched" : "no match");
    }
}
