// DAPO's overlong reward shaping. With L = completion length, L_max = max_length and L_cache = cache_length:
//   0                              for L <= L_max - L_cache
//   ((L_max - L_cache) - L) / L_cache  for L_max - L_cache < L <= L_max   (linear from 0 down to -1)
//   -1                             for L > L_max
// Length unit: "auto" (default) counts tokens when the sample has a `completion_tokens` column (an integer count, or a
// list of token ids whose length is used, as the trainer provides) and characters otherwise; "tokens" requires the
// column (null = not applicable without it); "chars" always counts UTF-16 characters.
// Defaults are DAPO's (L_max 20480, L_cache 4096 tokens); set them to your generation limit.
using System.Globalization;
using System.Text.Json;

namespace PostTrain.Rewards.Builtins;

public sealed class LengthReward : IReward
{
    public const string Description = "DAPO overlong shaping: 0 up to max_length - cache_length, linear to -1 at max_length, -1 beyond";
    public const string TokensColumn = "completion_tokens";

    private readonly double _max;
    private readonly double _cache;
    private readonly string _unit;

    public LengthReward(double maxLength = 20480, double cacheLength = 4096, string unit = "auto")
    {
        if (!(cacheLength > 0) || !(maxLength >= cacheLength))
            throw new RewardConfigException($"reward 'length': need 0 < cache_length <= max_length (got max_length {maxLength}, cache_length {cacheLength})");
        if (unit is not ("auto" or "chars" or "tokens"))
            throw new RewardConfigException($"reward 'length': option 'unit' must be auto, chars or tokens (got '{unit}')");
        (_max, _cache, _unit) = (maxLength, cacheLength, unit);
    }

    public string Name => "length";

    public static LengthReward FromOptions(RewardOptions o) =>
        new(o.Double("max_length", 20480), o.Double("cache_length", 4096), o.String("unit", "auto"));

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var tokens = _unit == "chars" ? null : TokenCount(input);
        if (_unit == "tokens" && tokens is null) return RewardResult.NotApplicable($"no '{TokensColumn}' column");
        var (length, unit) = tokens is { } t ? (t, "tokens") : (input.Completion.Length, "chars");
        var metrics = new Dictionary<string, double> { ["length"] = length };
        return new RewardResult(Shape(length), $"{length} {unit}", metrics);
    }

    /// <summary>The DAPO piecewise-linear penalty for a length.</summary>
    public double Shape(double length) =>
        length <= _max - _cache ? 0.0 : length <= _max ? ((_max - _cache) - length) / _cache : -1.0;

    private static double? TokenCount(RewardInput input)
    {
        if (!input.Columns.TryGetValue(TokensColumn, out var v) || v is null) return null;
        return v switch
        {
            string s => double.Parse(s, CultureInfo.InvariantCulture),
            JsonElement { ValueKind: JsonValueKind.Array } e => e.GetArrayLength(),
            JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
            IFormattable f => Convert.ToDouble(f, CultureInfo.InvariantCulture),
            System.Collections.ICollection c => c.Count,
            _ => throw new FormatException($"column '{TokensColumn}' must be a count or a list of token ids, got {v.GetType().Name}"),
        };
    }
}
