// A seeded pseudo-random generator whose whole state is four ulongs, so it can be saved in trainer_state.json
// and restored exactly (System.Random's state cannot). Algorithm: xoshiro256** (Blackman & Vigna), seeded with
// SplitMix64. Used for data shuffling and sampling on the host; torch's own generator is saved separately.
namespace PostTrain.Training.Infra;

public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;

    public Rng(long seed)
    {
        ulong x = (ulong)seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    private Rng() { }

    /// <summary>The full state; <see cref="FromState"/> continues the exact same sequence.</summary>
    public ulong[] State => [_s0, _s1, _s2, _s3];

    public static Rng FromState(IReadOnlyList<ulong> state)
    {
        if (state.Count != 4) throw new ArgumentException($"Rng state must have 4 words, got {state.Count}", nameof(state));
        if (state.All(w => w == 0)) throw new ArgumentException("Rng state must not be all zero", nameof(state));
        return new Rng { _s0 = state[0], _s1 = state[1], _s2 = state[2], _s3 = state[3] };
    }

    public static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextULong()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, maxExclusive), unbiased (Lemire's multiply-and-reject).</summary>
    public long NextLong(long maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be > 0");
        ulong n = (ulong)maxExclusive;
        UInt128 m = (UInt128)NextULong() * n;
        ulong low = (ulong)m;
        if (low < n)
        {
            ulong threshold = (0 - n) % n;
            while (low < threshold)
            {
                m = (UInt128)NextULong() * n;
                low = (ulong)m;
            }
        }
        return (long)(ulong)(m >> 64);
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = (int)NextLong(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
