// Counter-based random numbers for sampling, computed on the model's device with integer tensor ops: the uniform for
// (seed, row key, step, token) is a hash of those four numbers (rounds of murmur3's 32-bit finaliser, exact mod-2^32
// arithmetic in int64), so it is stateless and reproducible: the same on CPU and CUDA, and independent of batch
// size, chunking and row compaction (the row key is the prompt's index in the Generate call, the step the index of
// the token being generated). Needed because TorchSharp's torch.Generator is CPU-only, and CPU noise copied to the
// GPU would cost a synchronising host-to-device copy per step. 24 random bits per draw, u in (0, 1).
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

public static class CounterRng
{
    private const long Mod = 1L << 32;

    /// <summary>rowKeys (B) int64 (non-negative, &lt; 2^31) -> uniforms (B, vocab) fp32 in (0, 1) on rowKeys' device.</summary>
    public static Tensor Uniform(long seed, Tensor rowKeys, long step, long vocab)
    {
        using var scope = NewDisposeScope();
        var (s0, s1) = SeedWords(seed, step);
        return FromRowWords(rowKeys * 0x9E3779B1L + s0, s1, vocab).MoveToOuterDisposeScope();
    }

    /// <summary>As above with the step in a device tensor, (1) int64 (for CUDA graphs: a replay reads the step from
    /// the device, so one captured decode step serves every step). Equals the host-step overload exactly.</summary>
    public static Tensor Uniform(long seed, Tensor rowKeys, Tensor step, long vocab)
    {
        using var scope = NewDisposeScope();
        var (lo, hi) = SeedParts(seed);
        var st = Mix((step * 0x27D4EB2FL + hi).remainder(Mod));                        // (1)
        var s0 = st.bitwise_xor((long)lo);                                            // (1)
        return FromRowWords(rowKeys * 0x9E3779B1L + s0, Mix(unchecked(hi + 0x165667B1u)), vocab).MoveToOuterDisposeScope();
    }

    /// <summary>k0 (B) = rowKey * C + s0 (not yet reduced mod 2^32) -> uniforms (B, vocab).</summary>
    private static Tensor FromRowWords(Tensor k0, uint s1, long vocab)
    {
        var k = Mix(k0.remainder(Mod));                                                // (B)
        var tokens = arange(vocab, dtype: ScalarType.Int64, device: k0.device);       // (V)
        var h = Mix((k.unsqueeze(1) * 0x85EBCA77L + tokens).remainder(Mod));           // (B, V)
        h = Mix((h + s1).remainder(Mod));
        return (h.div(256, rounding_mode: RoundingMode.floor).to(ScalarType.Float32) + 0.5f) * (1f / 16777216f);
    }

    /// <summary>The same number computed on the host (reference for tests).</summary>
    public static float UniformHost(long seed, long rowKey, long step, long token)
    {
        var (s0, s1) = SeedWords(seed, step);
        uint k = Mix(unchecked((uint)rowKey * 0x9E3779B1u + s0));
        uint h = Mix(unchecked(k * 0x85EBCA77u + (uint)token));
        h = Mix(unchecked(h + s1));
        return ((h >> 8) + 0.5f) * (1f / 16777216f);
    }

    private static (uint S0, uint S1) SeedWords(long seed, long step)
    {
        var (lo, hi) = SeedParts(seed);
        uint st = Mix(unchecked((uint)step * 0x27D4EB2Fu + hi));
        return (lo ^ st, Mix(unchecked(hi + 0x165667B1u)));
    }

    /// <summary>The seed's words as the fused sampling kernel takes them: lo and hi (mixed with the step into s0) and s1.</summary>
    internal static (uint Lo, uint Hi, uint S1) SeedWords(long seed)
    {
        var (lo, hi) = SeedParts(seed);
        return (lo, hi, Mix(unchecked(hi + 0x165667B1u)));
    }

    private static (uint Lo, uint Hi) SeedParts(long seed) =>
        (Mix(unchecked((uint)seed ^ 0x9E3779B9u)), Mix(unchecked((uint)((ulong)seed >> 32) + 0x7F4A7C15u)));

    /// <summary>murmur3 fmix32 on the host.</summary>
    public static uint Mix(uint h)
    {
        h ^= h >> 16;
        h = unchecked(h * 0x85EBCA6Bu);
        h ^= h >> 13;
        h = unchecked(h * 0xC2B2AE35u);
        h ^= h >> 16;
        return h;
    }

    /// <summary>fmix32 on an int64 tensor holding values in [0, 2^32) (products wrap mod 2^64, the remainder keeps the
    /// low 32 bits exactly).</summary>
    private static Tensor Mix(Tensor h)
    {
        h = h.bitwise_xor(h.div(1L << 16, rounding_mode: RoundingMode.floor));
        h = (h * 0x85EBCA6BL).remainder(Mod);
        h = h.bitwise_xor(h.div(1L << 13, rounding_mode: RoundingMode.floor));
        h = (h * 0xC2B2AE35L).remainder(Mod);
        return h.bitwise_xor(h.div(1L << 16, rounding_mode: RoundingMode.floor));
    }
}
