// The FP8 kernels' contract (DeepSeek-V3's fine-grained recipe, E4M3, scale = amax / 448 per 1x128 tile or 128x128
// block, padding written as zeros with scale 1) and its reference in torch ops. Implementations: the native CUDA
// quantisation kernels and Triton grouped GEMMs (native/kernels, NativeFp8Kernels) on the GPU; ReferenceFp8Kernels
// (PostTrain.Core.Precision.Fp8's quantisers and an FP32 dequantise-and-multiply) everywhere, which the CPU tests use
// to check the grouped FP8 expert function and the GPU self-check uses as the reference.
using PostTrain.Core.Precision;
using static TorchSharp.torch;

namespace PostTrain.Core.Kernels;

/// <summary>FP8 quantisation and grouped GEMMs. Shapes: Kp, Np = K, N rounded up to 128.</summary>
public interface IFp8Kernels
{
    /// <summary>x (M, K) float32/bfloat16 -> q (M, Kp) float8_e4m3fn, scale (M, Kp/128): 1x128 tiles along K.</summary>
    (Tensor Q, Tensor Scale) QuantRows(Tensor x);

    /// <summary>x (M, N), M a multiple of 128 -> q (Np, M), scale (Np, M/128): 1x128 tiles along M of x^T.</summary>
    (Tensor Q, Tensor Scale) QuantColumns(Tensor x);

    /// <summary>w (..., N, K) -> q (..., Np, Kp), scale (..., Np/128, Kp/128): 128x128 blocks.</summary>
    (Tensor Q, Tensor Scale) QuantBlocks(Tensor w);

    /// <summary>QuantBlocks of w and, from the same read, of w with its last two dims swapped: (..., Kp, Np),
    /// (..., Kp/128, Np/128), exactly the first result transposed (a block's amax is its transpose's). The forward
    /// keeps both for Dgrad, which needs the weights transposed, instead of a transposing copy in backward.</summary>
    (Tensor Q, Tensor Scale, Tensor QT, Tensor ScaleT) QuantBlocksBoth(Tensor w);

    /// <summary>QuantColumns of dequant(q, scale) without materialising it: q (M, Kp) float8 with 1x128 tile scales
    /// (M, Kp/128), M a multiple of 128 -> (Kp, M), (Kp, M/128).</summary>
    (Tensor Q, Tensor Scale) RequantColumns(Tensor q, Tensor scale);

    /// <summary>c (M, N) = per 128-row block i with e = blockExpert[i] &gt;= 0: dequant(qa rows of i) dequant(qb[e])^T;
    /// zeros where blockExpert[i] &lt; 0. qa (M, K) tiles, sa (M, K/128); qb (E, N, K) blocks, sb (E, N/128, K/128);
    /// blockExpert (M/128) int32; all dims multiples of 128. Result in bfloat16 or float32 (the implementation's).</summary>
    Tensor GemmMGrouped(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor blockExpert);

    /// <summary>c (E, NA, NB), c[e] = dequant(qa[:, s]) dequant(qb[:, s])^T over the columns
    /// s = [segments[e], segments[e+1]). qa (NA, M) and qb (NB, M) with 1x128 tiles along M; segments (E+1) int32,
    /// multiples of 128 from 0 to at most M. Accumulated in float32; c in <paramref name="outType"/> (float32, or
    /// bfloat16 for weights kept in bf16: each value rounded once, no float32 copy where the kernel can write bf16).</summary>
    Tensor GemmKGrouped(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor segments, ScalarType outType = ScalarType.Float32);
}

/// <summary>The contract in torch ops: Fp8's quantisers and FP32 dequantise-and-multiply (reads the expert tables to
/// the host: a reference, not a fast path).</summary>
public sealed class ReferenceFp8Kernels : IFp8Kernels
{
    public static readonly ReferenceFp8Kernels Instance = new();

    public (Tensor Q, Tensor Scale) QuantRows(Tensor x) => Fp8.QuantizeTiles(x, 1, Fp8.Block);

    public (Tensor Q, Tensor Scale) QuantColumns(Tensor x)
    {
        if (x.dim() != 2 || x.shape[0] % Fp8.Block != 0)
            throw new ArgumentException($"QuantColumns expects (M, N) with M a multiple of {Fp8.Block}; got [{string.Join(", ", x.shape)}].", nameof(x));
        return Fp8.QuantizeTiles(x.t(), Fp8.Block, Fp8.Block);
    }

    public (Tensor Q, Tensor Scale) QuantBlocks(Tensor w) => Fp8.QuantizeBlocks(w, Fp8.Block, Fp8.Block);

    public (Tensor Q, Tensor Scale, Tensor QT, Tensor ScaleT) QuantBlocksBoth(Tensor w)
    {
        var (q, s) = QuantBlocks(w);
        return (q, s, q.transpose(-2, -1).contiguous(), s.transpose(-2, -1).contiguous());
    }

    public (Tensor Q, Tensor Scale) RequantColumns(Tensor q, Tensor scale)
    {
        using var scope = NewDisposeScope();
        var (qt, st) = QuantColumns(Fp8.DequantizeActTiles(q, scale, q.shape[1]));
        return scope.MoveToOuter(qt, st);
    }

    public Tensor GemmMGrouped(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor blockExpert)
    {
        Fp8.CheckTiles(qa, sa, "a");
        Fp8.CheckBlocks(qb, sb, "b");
        using var scope = NewDisposeScope();
        long m = qa.shape[0], k = qa.shape[1], n = qb.shape[1];
        var a = Fp8.DequantizeActTiles(qa, sa, k);                                      // (M, K)
        var b = Fp8.DequantizeWeightBlocks(qb, sb, n, k);                               // (E, N, K)
        var c = zeros(m, n, dtype: ScalarType.Float32, device: qa.device);
        var experts = blockExpert.to(ScalarType.Int64).cpu().data<long>().ToArray();
        foreach (var e in experts.Where(e => e >= 0).Distinct())
        {
            var rows = arange(m, dtype: ScalarType.Int64, device: qa.device).view(-1, Fp8.Block)
                .index_select(0, tensor(Enumerable.Range(0, experts.Length).Where(i => experts[i] == e).Select(i => (long)i).ToArray(), device: qa.device))
                .reshape(-1);                                                           // rows of e's blocks
            c.index_copy_(0, rows, a.index_select(0, rows).mm(b[e].t()));
        }
        return scope.MoveToOuter(c);
    }

    public Tensor GemmKGrouped(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor segments, ScalarType outType = ScalarType.Float32)
    {
        Fp8.CheckTiles(qa, sa, "a");
        Fp8.CheckTiles(qb, sb, "b");
        using var scope = NewDisposeScope();
        long m = qa.shape[1];
        var a = Fp8.DequantizeActTiles(qa, sa, m);                                      // (NA, M)
        var b = Fp8.DequantizeActTiles(qb, sb, m);                                      // (NB, M)
        var seg = segments.to(ScalarType.Int64).cpu().data<long>().ToArray();
        var parts = Enumerable.Range(0, seg.Length - 1)
            .Select(e => a.narrow(1, seg[e], seg[e + 1] - seg[e]).mm(b.narrow(1, seg[e], seg[e + 1] - seg[e]).t()))
            .ToList();                                                                  // E x (NA, NB)
        return scope.MoveToOuter(stack(parts, 0).to(outType));
    }
}
