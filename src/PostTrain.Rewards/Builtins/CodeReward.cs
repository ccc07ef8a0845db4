// The code reward: extracts the program from the completion's fenced block (```js / ```csharp ...), runs it in the
// sandbox worker pool against the row's `tests` column (format: Sandbox/README.md) and scores the share of tests
// passed (option all_or_nothing: 1 only when every test passes). No code block -> 0 with reason; no tests -> null.
// Options for throughput: `workers` (> 0: a pool of its own with that many workers, disposed with the reward; 0, the
// default: the process-wide pool, one worker per core) and `warm` (start both languages' workers when the reward is
// created, so a training run's first batch does not wait for process starts).
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Builtins;

public sealed class CodeReward : IReward, IDisposable
{
    public const string Description = "share of the `tests` column's cases the completion's code passes in the sandbox (JavaScript or C#)";

    private readonly string _language;
    private readonly string _column;
    private readonly bool _allOrNothing;
    private readonly SandboxPool? _pool;
    private readonly SandboxPool? _ownPool;

    public CodeReward(string language, string column = "tests", bool allOrNothing = false, SandboxPool? pool = null)
    {
        _language = language;
        _column = column;
        _allOrNothing = allOrNothing;
        _pool = pool;
    }

    private CodeReward(string language, string column, bool allOrNothing, int workers, bool warm)
        : this(language, column, allOrNothing, workers > 0 ? new SandboxPool(SandboxLimits.Default with { MaxWorkers = workers }) : null)
    {
        _ownPool = workers > 0 ? _pool : null;
        if (warm)
            foreach (var lang in new[] { "javascript", "csharp" }) Pool.Warm(lang);
    }

    public string Name => "code";

    private SandboxPool Pool => _pool ?? SandboxPool.Shared;

    public static CodeReward FromOptions(RewardOptions o)
    {
        var workers = o.Int("workers", 0);
        if (workers < 0) throw new RewardConfigException($"reward '{o.RewardName}': workers must be >= 0 (0 = one per core), got {workers}");
        return new(o.String("language", "javascript"), o.String("column", "tests"), o.Bool("all_or_nothing", false), workers, o.Bool("warm", false));
    }

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var testsJson = input.Column(_column);
        if (string.IsNullOrWhiteSpace(testsJson)) return RewardResult.NotApplicable($"no '{_column}' column");
        var spec = TestSpec.Parse(testsJson, _column);
        string lang = spec.Language ?? input.Column("language") ?? _language;
        var code = CodeExtractor.Extract(input.Completion, lang);
        if (code is null) return new RewardResult(0.0, $"no {lang} code block");
        if (_allOrNothing) spec = spec with { AllOrNothing = true };
        var result = Pool.RunAsync(new CodeRequest(lang, code, spec), cancellationToken).GetAwaiter().GetResult();
        var metrics = new Dictionary<string, double> { ["passed"] = result.Passed, ["tests"] = result.Tests.Count };
        string reason = result.Error ?? string.Join(",", result.Tests.Select(t => t.Verdict.ToString()).Distinct());
        return new RewardResult(result.Score, reason, metrics);
    }

    public void Dispose() => _ownPool?.Dispose();
}
