// Fine-grained FP8 (E4M3) quantisation as in DeepSeek-V3: activations per 1x128 tile (one row, 128
// consecutive columns), weights per 128x128 block, scale = amax / 448 computed online from the data.
// Simplifications: dimensions that are not multiples of 128 are padded with zeros (the quantised tensors
// keep the padded shape, the dequantisers trim it); a tile or block that is all zeros gets scale 1 so it
// dequantises to exact zeros. Inputs may be any float dtype; scales and the arithmetic are FP32.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public static partial class Fp8
{
    /// <summary>Tile and block edge used by the recipe.</summary>
    public const int Block = 128;

    /// <summary>Largest finite float8_e4m3fn value.</summary>
    public const double E4M3Max = 448.0;

    /// <summary>float8_e4m3fn. TorchSharp 0.107 has no enum member for it, the native code is 24.</summary>
    public static readonly ScalarType Float8E4M3 = (ScalarType)24;

    /// <summary>Quantises x (M, K) per 1x128 tile along K. Returns q (M, Kp) float8_e4m3fn and scale (M, Kp/128) fp32,
    /// where Kp = K rounded up to a multiple of 128 and the padded columns are zeros.</summary>
    public static (Tensor q, Tensor scale) QuantizeActTiles(Tensor x) => QuantizeTiles(x, 1, Block);

    /// <summary>Quantises w (..., N, K) per 128x128 block of the last two dims. Returns q (..., Np, Kp) float8_e4m3fn
    /// and scale (..., Np/128, Kp/128) fp32, with N and K zero-padded to multiples of 128.</summary>
    public static (Tensor q, Tensor scale) QuantizeWeightBlocks(Tensor w) => QuantizeBlocks(w, Block, Block);

    /// <summary>Inverse of QuantizeActTiles: q (M, Kp), scale (M, Kp/128) to fp32 (M, cols), cols &lt;= Kp.</summary>
    public static Tensor DequantizeActTiles(Tensor q, Tensor scale, long cols)
    {
        CheckTiles(q, scale, "q");
        if (cols < 0 || cols > q.shape[1])
            throw new ArgumentOutOfRangeException(nameof(cols), $"cols {cols} is outside the quantised width {q.shape[1]}.");
        using var scope = NewDisposeScope();
        long m = q.shape[0], kp = q.shape[1];
        var x = q.to(ScalarType.Float32).view(m, kp / Block, Block) * scale.unsqueeze(-1); // (M, Kp/128, 128)
        return scope.MoveToOuter(x.view(m, kp)[.., ..(int)cols]);
    }

    /// <summary>Inverse of QuantizeWeightBlocks: q (..., Np, Kp), scale (..., Np/128, Kp/128) to fp32 (..., rows, cols).</summary>
    public static Tensor DequantizeWeightBlocks(Tensor q, Tensor scale, long rows, long cols)
    {
        CheckBlocks(q, scale, "q");
        long np = q.shape[^2], kp = q.shape[^1];
        if (rows < 0 || rows > np || cols < 0 || cols > kp)
            throw new ArgumentOutOfRangeException(nameof(rows), $"({rows}, {cols}) is outside the quantised shape ({np}, {kp}).");
        using var scope = NewDisposeScope();
        var lead = q.shape[..^2];
        long b = lead.Aggregate(1L, (a, d) => a * d);
        var blocks = q.to(ScalarType.Float32).reshape(b, np / Block, Block, kp / Block, Block);
        var s = scale.reshape(b, np / Block, 1, kp / Block, 1);
        var w = (blocks * s).reshape([.. lead, np, kp]);                                     // (..., Np, Kp)
        return scope.MoveToOuter(w[TensorIndex.Ellipsis, ..(int)rows, ..(int)cols]);
    }

    /// <summary>Quantises x (M, K) per 1x128 tile; rows are zero-padded to a multiple of rowMultiple and columns to a
    /// multiple of colMultiple (a multiple of 128). Padded rows and tiles are zeros with scale 1.</summary>
    public static (Tensor q, Tensor scale) QuantizeTiles(Tensor x, long rowMultiple, long colMultiple)
    {
        if (x.dim() != 2)
            throw new ArgumentException($"Fp8 tile quantisation expects a 2-D tensor (M, K); got shape [{string.Join(", ", x.shape)}].", nameof(x));
        CheckMultiple(colMultiple);
        using var scope = NewDisposeScope();
        long m = x.shape[0], k = x.shape[1];
        long mp = RoundUp(m, rowMultiple), kp = RoundUp(k, colMultiple);
        var xf = x.to(ScalarType.Float32);
        if (mp != m || kp != k)
            xf = nn.functional.pad(xf, (0, kp - k, 0, mp - m));
        var tiles = xf.contiguous().view(mp, kp / Block, Block);                                // (Mp, Kp/128, 128)
        var scale = ScaleOf(tiles.abs().amax([-1], keepdim: true));                             // (Mp, Kp/128, 1)
        var q = ToE4M3(tiles / scale).view(mp, kp);
        return scope.MoveToOuter(q, scale.view(mp, kp / Block));
    }

    /// <summary>Quantises w (..., N, K) per 128x128 block; N and K are zero-padded to multiples of rowMultiple and
    /// colMultiple (both multiples of 128).</summary>
    public static (Tensor q, Tensor scale) QuantizeBlocks(Tensor w, long rowMultiple, long colMultiple)
    {
        if (w.dim() < 2)
            throw new ArgumentException($"Fp8 block quantisation expects a tensor (..., N, K); got shape [{string.Join(", ", w.shape)}].", nameof(w));
        CheckMultiple(rowMultiple);
        CheckMultiple(colMultiple);
        using var scope = NewDisposeScope();
        var lead = w.shape[..^2];
        long b = lead.Aggregate(1L, (a, d) => a * d);
        long n = w.shape[^2], k = w.shape[^1];
        long np = RoundUp(n, rowMultiple), kp = RoundUp(k, colMultiple);
        var wf = w.to(ScalarType.Float32).reshape(b, n, k);
        if (np != n || kp != k)
            wf = nn.functional.pad(wf, (0, kp - k, 0, np - n));
        var blocks = wf.contiguous().view(b, np / Block, Block, kp / Block, Block);             // (B, Np/128, 128, Kp/128, 128)
        var scale = ScaleOf(blocks.abs().amax([2, 4], keepdim: true));                          // (B, Np/128, 1, Kp/128, 1)
        var q = ToE4M3(blocks / scale).view([.. lead, np, kp]);
        return scope.MoveToOuter(q, scale.view([.. lead, np / Block, kp / Block]));
    }

    internal static long RoundUp(long n, long multiple) => (n + multiple - 1) / multiple * multiple;

    // scale = amax / 448; an all-zero tile gets 1 so 0 / scale stays 0 (never 0 / 0). The divisor is a device
    // tensor, not a scalar: CUDA turns division by a scalar into multiplication by its reciprocal, which can
    // differ from the CPU's true division in the last bit.
    private static Tensor ScaleOf(Tensor amax) => where(amax > 0, amax / full_like(amax, E4M3Max), ones_like(amax));

    // x / scale can exceed 448 by an FP32 rounding step, and E4M3 casts overflow to NaN: clamp first.
    private static Tensor ToE4M3(Tensor scaled) => scaled.clamp(-E4M3Max, E4M3Max).to(Float8E4M3);

    private static void CheckMultiple(long multiple)
    {
        if (multiple <= 0 || multiple % Block != 0)
            throw new ArgumentOutOfRangeException(nameof(multiple), $"Padding multiple {multiple} must be a positive multiple of {Block}.");
    }

    internal static void CheckTiles(Tensor q, Tensor scale, string name)
    {
        if (q.dim() != 2 || q.shape[1] % Block != 0 || scale.dim() != 2 || scale.shape[0] != q.shape[0] || scale.shape[1] != q.shape[1] / Block)
            throw new ArgumentException(
                $"Tile-quantised tensor '{name}' must be (M, Kp) with Kp % 128 == 0 and scale (M, Kp/128); got [{string.Join(", ", q.shape)}] and scale [{string.Join(", ", scale.shape)}].");
    }

    internal static void CheckBlocks(Tensor q, Tensor scale, string name)
    {
        bool ok = q.dim() >= 2 && scale.dim() == q.dim() && q.shape[^2] % Block == 0 && q.shape[^1] % Block == 0
            && scale.shape[^2] == q.shape[^2] / Block && scale.shape[^1] == q.shape[^1] / Block
            && q.shape[..^2].SequenceEqual(scale.shape[..^2]);
        if (!ok)
            throw new ArgumentException(
                $"Block-quantised tensor '{name}' must be (..., Np, Kp) with multiples of 128 and scale (..., Np/128, Kp/128); got [{string.Join(", ", q.shape)}] and scale [{string.Join(", ", scale.shape)}].");
    }
}
