// The math accuracy reward: 1 when the completion's final answer (last \boxed{}, "the answer is ...", or the last
// number as a fallback) is equivalent to the gold answer (MathVerifier: symbolic/numeric equivalence), else 0.
// The gold answer comes from the `answer` column (option `column`); a row without one is not applicable (null).
using PostTrain.Rewards.Math;

namespace PostTrain.Rewards.Builtins;

public sealed class MathReward(string column = "answer", MathCheckOptions? options = null) : IReward
{
    public const string Description = "1 if the final answer (\\boxed{}, 'the answer is', last number) equals the gold `answer` column, else 0";

    public string Name => "math";

    public static MathReward FromOptions(RewardOptions o)
    {
        var d = MathCheckOptions.Default;
        var opts = d with
        {
            FallbackToLastNumber = o.Bool("fallback_to_last_number", d.FallbackToLastNumber),
            RelativeTolerance = o.Double("relative_tolerance", d.RelativeTolerance),
            PercentEqualsFraction = o.Bool("percent_equals_fraction", d.PercentEqualsFraction),
            Timeout = TimeSpan.FromMilliseconds(o.Double("timeout_ms", d.Timeout.TotalMilliseconds)),
        };
        return new MathReward(o.String("column", "answer"), opts);
    }

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var gold = input.Column(column);
        if (string.IsNullOrWhiteSpace(gold)) return RewardResult.NotApplicable($"no '{column}' column");
        var verdict = MathVerifier.CheckCompletion(gold, input.Completion, options);
        return new RewardResult(verdict.Correct ? 1.0 : 0.0, verdict.Reason,
            new Dictionary<string, double> { ["answered"] = verdict.ExtractedAnswer is null ? 0 : 1 });
    }
}
