// The globals a C# script plugin sees at its top level: the recipe's options for this reward
// (`options: {...}` in the recipe). Read them once at the top and capture them in the returned function.
using System.Globalization;

namespace PostTrain.Rewards.Plugins;

public sealed class RewardGlobals(IReadOnlyDictionary<string, object?> options)
{
    public IReadOnlyDictionary<string, object?> Options { get; } = options;

    /// <summary>An option as text, or the fallback when absent.</summary>
    public string Option(string key, string fallback) =>
        Options.TryGetValue(key, out var v) && v is not null
            ? (v is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : v.ToString() ?? fallback)
            : fallback;

    /// <summary>An option as a number, or the fallback when absent.</summary>
    public double Option(string key, double fallback) =>
        Options.TryGetValue(key, out var v) && v is not null
            ? double.Parse(v is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : v.ToString()!, CultureInfo.InvariantCulture)
            : fallback;
}
