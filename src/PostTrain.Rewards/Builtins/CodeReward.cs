// The code reward: extracts the program from the completion's fenced block (```js / ```csharp ...), runs it in the
// sandbox worker pool against the row's `tests` column (format: Sandbox/README.md) and scores the share of tests
// passed (option all_or_nothing: 1 only when every test passes). No code block -> 0 with reason; no tests -> null.
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Builtins;

public sealed class CodeReward(string language, string column = "tests", bool allOrNothing = false, SandboxPool? pool = null) : IReward
{
    public const string Description = "share of the `tests` column's cases the completion's code passes in the sandbox (JavaScript or C#)";

    public string Name => "code";

    public static CodeReward FromOptions(RewardOptions o) =>
        new(o.String("language", "javascript"), o.String("column", "tests"), o.Bool("all_or_nothing", false));

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var testsJson = input.Column(column);
        if (string.IsNullOrWhiteSpace(testsJson)) return RewardResult.NotApplicable($"no '{column}' column");
        var spec = TestSpec.Parse(testsJson, column);
        string lang = spec.Language ?? input.Column("language") ?? language;
        var code = CodeExtractor.Extract(input.Completion, lang);
        if (code is null) return new RewardResult(0.0, $"no {lang} code block");
        if (allOrNothing) spec = spec with { AllOrNothing = true };
        var result = (pool ?? SandboxPool.Shared).RunAsync(new CodeRequest(lang, code, spec), cancellationToken).GetAwaiter().GetResult();
        var metrics = new Dictionary<string, double> { ["passed"] = result.Passed, ["tests"] = result.Tests.Count };
        string reason = result.Error ?? string.Join(",", result.Tests.Select(t => t.Verdict.ToString()).Distinct());
        return new RewardResult(result.Score, reason, metrics);
    }
}
