// The row layout the grouped FP8 GEMMs work in: rows sorted by expert (counts[e] rows for expert e), each expert's
// segment padded to a multiple of 128 rows, so that no 1x128 tile along the tokens (the weight gradient's quantisation)
// and no 128-row block of the GEMMs straddles two experts. Computed on the device from the device counts with static
// shapes (no host sync, capturable in a CUDA graph):
//   padded_e = ceil(c_e / 128) * 128,  pstart_e = sum_{j<e} padded_j,  start_e = sum_{j<e} c_j
//   destination[t] = t - start_e + pstart_e for the expert e of sorted row t (e = #{j : end_j <= t})
//   segments = [pstart_0, ..., pstart_{E-1}, pend_{E-1}];  blockExpert[i] = the expert whose segment holds row 128 i, or -1
// Rows = 128 (ceil(T / 128) + E - 1) is the static bound on sum_e padded_e (sum_e ceil(c_e / 128) <= ceil(T / 128) + E - 1);
// rows past the last segment are padding. One expert with T a multiple of 128 (a dense layer) is the identity layout:
// Scatter and Gather then move no data.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public sealed class Fp8ExpertLayout : IDisposable
{
    private Fp8ExpertLayout(Tensor destination, Tensor blockExpert, Tensor segments, long rows, bool identity)
    {
        Destination = destination;
        BlockExpert = blockExpert;
        Segments = segments;
        Rows = rows;
        Identity = identity;
    }

    /// <summary>True when every row stays where it is (one expert, T a multiple of 128).</summary>
    public bool Identity { get; }

    /// <summary>(T) int64: the padded row of each sorted row.</summary>
    public Tensor Destination { get; }

    /// <summary>(Rows/128) int32: the expert of each 128-row block, -1 for padding blocks.</summary>
    public Tensor BlockExpert { get; }

    /// <summary>(E+1) int32: the padded segment boundaries, multiples of 128.</summary>
    public Tensor Segments { get; }

    /// <summary>Padded row count (static: depends only on T and E).</summary>
    public long Rows { get; }

    /// <summary>The layout for <paramref name="tokens"/> sorted rows and integer counts (E) on their device.</summary>
    public static Fp8ExpertLayout Build(Tensor counts, long tokens)
    {
        if (counts.dim() != 1 || counts.is_floating_point())
            throw new ArgumentException($"Fp8ExpertLayout: counts must be an integer vector (E); got {counts.dtype} [{string.Join(", ", counts.shape)}].", nameof(counts));
        long experts = counts.shape[0];
        if (experts < 1)
            throw new ArgumentException("Fp8ExpertLayout: at least one expert is needed.", nameof(counts));
        long rows = Fp8.RoundUp(tokens, Fp8.Block) + (experts - 1) * Fp8.Block;
        using var scope = NewDisposeScope();
        var device = counts.device;
        var c = counts.to(ScalarType.Int64);                                                        // (E)
        var padded = (c + (Fp8.Block - 1)).div(Fp8.Block, rounding_mode: RoundingMode.floor) * Fp8.Block;
        var pend = padded.cumsum(0);                                                                // (E)
        var pstart = pend - padded;
        var end = c.cumsum(0);
        var start = end - c;
        var row = arange(tokens, dtype: ScalarType.Int64, device: device);                          // (T)
        var expertOfRow = searchsorted(end, row, right: true).clamp_max(experts - 1);               // (T)
        var destination = row - start.index_select(0, expertOfRow) + pstart.index_select(0, expertOfRow);
        var blockStart = arange(0, rows, Fp8.Block, dtype: ScalarType.Int64, device: device);       // (Rows/128)
        var owner = searchsorted(pend, blockStart, right: true);
        var blockExpert = where(owner < experts, owner, full_like(owner, -1)).to(ScalarType.Int32);
        var segments = cat([zeros(1, dtype: ScalarType.Int64, device: device), pend]).to(ScalarType.Int32);
        return new Fp8ExpertLayout(destination.MoveToOuterDisposeScope(), blockExpert.MoveToOuterDisposeScope(),
            segments.MoveToOuterDisposeScope(), rows, experts == 1 && rows == tokens);
    }

    /// <summary>The layout of one expert holding all <paramref name="tokens"/> rows (a dense layer): known on the host,
    /// so it costs no device computation (Build would find the same with a dozen small kernels).</summary>
    public static Fp8ExpertLayout Single(long tokens, Device device)
    {
        long rows = Fp8.RoundUp(tokens, Fp8.Block);
        return new Fp8ExpertLayout(arange(tokens, dtype: ScalarType.Int64, device: device),
            zeros(rows / Fp8.Block, dtype: ScalarType.Int32, device: device),
            arange(2, dtype: ScalarType.Int32, device: device).mul_(rows), rows, rows == tokens);   // [0, rows], made on the
                                                                   // device: no host copy, which a CUDA graph capture refuses
    }

    /// <summary>x (T, D) sorted by expert -> (Rows, D) in the padded layout, zeros elsewhere.</summary>
    public Tensor Scatter(Tensor x) => Scatter(x, Destination, Rows, Identity);

    /// <summary>y (Rows, D') in the padded layout -> (T, width) sorted rows, the first <paramref name="width"/> columns.</summary>
    public Tensor Gather(Tensor y, long width) => Gather(y, Destination, width, Identity);

    internal static Tensor Scatter(Tensor x, Tensor destination, long rows, bool identity) =>
        identity ? x.contiguous() : zeros(rows, x.shape[1], dtype: x.dtype, device: x.device).index_copy_(0, destination, x);

    internal static Tensor Gather(Tensor y, Tensor destination, long width, bool identity) =>
        (identity ? y : y.index_select(0, destination)).narrow(1, 0, width);

    public void Dispose()
    {
        Destination.Dispose();
        BlockExpert.Dispose();
        Segments.Dispose();
    }
}
