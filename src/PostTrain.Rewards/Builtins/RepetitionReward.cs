// open-r1's n-gram repetition penalty: words = lower-cased completion split on whitespace; over its n-grams,
// penalty = -(1 - unique_ngrams / total_ngrams) * max_penalty. 0 for an empty completion or one with fewer than n
// words. max_penalty is a magnitude: open-r1 writes it negative (-1.0), here either sign gives the same penalty.
namespace PostTrain.Rewards.Builtins;

public sealed class RepetitionReward : IReward
{
    public const string Description = "n-gram repetition penalty -(1 - unique/total n-grams) * max_penalty (open-r1)";

    private readonly int _n;
    private readonly double _maxPenalty;

    public RepetitionReward(int ngram = 3, double maxPenalty = 1.0)
    {
        if (ngram < 1) throw new RewardConfigException($"reward 'repetition': ngram must be >= 1 (got {ngram})");
        (_n, _maxPenalty) = (ngram, System.Math.Abs(maxPenalty));
    }

    public string Name => "repetition";

    public static RepetitionReward FromOptions(RewardOptions o) => new(o.Int("ngram", 3), o.Double("max_penalty", 1.0));

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var words = input.Completion.ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (words.Length < _n) return new RewardResult(0.0, $"{words.Length} words < n = {_n}");
        var total = words.Length - _n + 1;
        var unique = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < total; i++) unique.Add(string.Join('\u0001', words, i, _n));
        var repeated = 1.0 - (double)unique.Count / total;
        var metrics = new Dictionary<string, double> { ["repeated_ngram_share"] = repeated };
        return new RewardResult(repeated == 0 ? 0.0 : -repeated * _maxPenalty, $"{unique.Count}/{total} unique {_n}-grams", metrics);
    }
}
