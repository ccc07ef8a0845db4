// A tiny seeded random generator (SplitMix64) so generated datasets are identical on every .NET version.
namespace PostTrain.Data.Generators;

public sealed class SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform integer in [min, max] (inclusive).</summary>
    public int Next(int min, int max) => min + (int)(NextUInt64() % (ulong)(max - min + 1));

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(0, items.Count - 1)];
}
