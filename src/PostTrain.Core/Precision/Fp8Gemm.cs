// The blockwise-scaled FP8 GEMM at the heart of the recipe: C = dequant(A) dequant(B)^T, both operands
// quantised along their second dimension (the contraction), FP32 accumulation.
// A is always 1x128-tile scaled; B is 1x128-tile scaled (Wgrad) or 128x128-block scaled (weights).
// CPU: exact emulation (dequantise the real float8 values to FP32, FP32 matmul). CUDA: torch._scaled_mm.
// Simplifications on CUDA: operands are padded (zero data, scale 1) so the contraction is a multiple of
// 512 and the rows multiples of 128, because _scaled_mm silently returns garbage when K/128 is not a
// multiple of 4; the output is bf16 unless GpuOutputType is set to Float32 (see Fp8SelfCheck). If a
// scaling combination is refused by the installed PyTorch (an exception, e.g. 1x128 x 1x128 for Wgrad), that
// layout falls back to the emulation on the GPU for the rest of the process, with one line on stderr.
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

/// <summary>How the B operand of Fp8Gemm is scaled.</summary>
public enum Fp8Layout
{
    /// <summary>One scale per row per 128 columns: scale (Nb, Kp/128).</summary>
    Tiles1x128,

    /// <summary>One scale per 128x128 block: scale (Nbp/128, Kp/128).</summary>
    Blocks128x128,
}

public static class Fp8Gemm
{
    /// <summary>Contraction padding on CUDA: K/128 must be a multiple of 4 for _scaled_mm's blockwise path.</summary>
    public const long GpuContractionMultiple = 512;

    /// <summary>Row padding of both operands on CUDA (keeps scale strides 16-byte aligned and dims multiples of 16).</summary>
    public const long GpuRowMultiple = 128;

    /// <summary>Output dtype of _scaled_mm on CUDA (BFloat16, verified; Float32 if Fp8SelfCheck says it works).
    /// Results are converted to FP32 afterwards either way.</summary>
    public static ScalarType GpuOutputType { get; set; } = ScalarType.BFloat16;

    /// <summary>Padding multiples (rows, contraction) that make quantised operands usable on this device without copies.</summary>
    public static (long Rows, long Contraction) Alignment(Device device) =>
        device.type == DeviceType.CUDA ? (GpuRowMultiple, GpuContractionMultiple) : (1, Fp8.Block);

    /// <summary>C (rows, cols) fp32 = dequant(qa, sa) dequant(qb, sb)^T. qa (Ma, Kp) float8 with sa (Ma, Kp/128);
    /// qb (Nb, Kp) float8 with sb laid out as bLayout says. rows &lt;= Ma and cols &lt;= Nb trim the padding.</summary>
    public static Tensor Multiply(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Fp8Layout bLayout, long rows, long cols)
    {
        if (qa.device_type != DeviceType.CUDA || Rejected[(int)bLayout])
            return Emulate(qa, sa, qb, sb, bLayout, rows, cols);
        try
        {
            using var scope = NewDisposeScope();
            return scope.MoveToOuter(ScaledMm(qa, sa, qb, sb, bLayout, rows, cols, GpuOutputType).to(ScalarType.Float32));
        }
        catch (ExternalException e)
        {
            // Same math, slower: dequantise on the GPU and multiply in FP32. Said once, on stderr.
            Rejected[(int)bLayout] = true;
            Console.Error.WriteLine($"Fp8Gemm: torch._scaled_mm rejected the 1x128 x {bLayout} scaling ({e.Message.Split('\n')[0]}); " +
                "this GEMM falls back to dequantise + FP32 matmul on the GPU from now on.");
            return Emulate(qa, sa, qb, sb, bLayout, rows, cols);
        }
    }

    // Per B layout: set once _scaled_mm has refused it on this process's GPU (Fp8SelfCheck shows which).
    private static readonly bool[] Rejected = new bool[2];

    /// <summary>CPU reference path (any device): dequantise both operands to FP32 and multiply in FP32.</summary>
    public static Tensor Emulate(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Fp8Layout bLayout, long rows, long cols)
    {
        CheckOperands(qa, sa, qb, sb, bLayout, rows, cols);
        using var scope = NewDisposeScope();
        long kp = qa.shape[1];
        var a = Fp8.DequantizeActTiles(qa, sa, kp);                                               // (Ma, Kp)
        var b = bLayout == Fp8Layout.Tiles1x128
            ? Fp8.DequantizeActTiles(qb, sb, kp)
            : Fp8.DequantizeWeightBlocks(qb, sb, qb.shape[0], kp);                                // (Nb, Kp)
        var c = a[..(int)rows].mm(b[..(int)cols].t());                                            // (rows, cols)
        return scope.MoveToOuter(c);
    }

    /// <summary>CUDA path: torch._scaled_mm with blockwise scales (1x128 x 128x128 or 1x128 x 1x128). Pads the operands
    /// when they are not already aligned (see Alignment), returns (rows, cols) in outType (BFloat16 or Float32).</summary>
    public static Tensor ScaledMm(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Fp8Layout bLayout, long rows, long cols, ScalarType outType)
    {
        CheckOperands(qa, sa, qb, sb, bLayout, rows, cols);
        using var scope = NewDisposeScope();
        long ma = qa.shape[0], kp = qa.shape[1], nb = qb.shape[0];
        long kpp = Fp8.RoundUp(kp, GpuContractionMultiple), mp = Fp8.RoundUp(ma, GpuRowMultiple), np = Fp8.RoundUp(nb, GpuRowMultiple);
        var a = PadData(qa, mp, kpp);                                                             // (Mp, Kpp)
        var b = PadData(qb, np, kpp);                                                             // (Np, Kpp)
        var scaleA = PadScale(sa, mp, kpp / Fp8.Block).t().contiguous().t();                      // (Mp, Kpp/128), outer-dim-major
        var scaleB = bLayout == Fp8Layout.Tiles1x128
            ? PadScale(sb, np, kpp / Fp8.Block).t().contiguous()                                  // (Kpp/128, Np): b's 1x128 scales, transposed
            : PadScale(sb, np / Fp8.Block, kpp / Fp8.Block).contiguous().t();                     // (Kpp/128, Np/128): the block grid, transposed
        var c = PrecisionScripts.ScaledMm(a, b, scaleA, scaleB, outType);                         // (Mp, Np)
        return scope.MoveToOuter(c[..(int)rows, ..(int)cols]);
    }

    private static Tensor PadData(Tensor q, long rows, long cols)
    {
        if (q.shape[0] == rows && q.shape[1] == cols)
            return q.contiguous();
        var z = zeros(rows, cols, dtype: Fp8.Float8E4M3, device: q.device);
        z.narrow(0, 0, q.shape[0]).narrow(1, 0, q.shape[1]).copy_(q);
        return z;
    }

    private static Tensor PadScale(Tensor s, long rows, long cols)
    {
        if (s.shape[0] == rows && s.shape[1] == cols)
            return s;
        var o = ones(rows, cols, dtype: ScalarType.Float32, device: s.device);
        o.narrow(0, 0, s.shape[0]).narrow(1, 0, s.shape[1]).copy_(s);
        return o;
    }

    private static void CheckOperands(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Fp8Layout bLayout, long rows, long cols)
    {
        Fp8.CheckTiles(qa, sa, "A");
        if (bLayout == Fp8Layout.Tiles1x128)
            Fp8.CheckTiles(qb, sb, "B");
        else if (qb.dim() != 2)
            throw new ArgumentException($"Block-quantised operand 'B' must be 2-D; got [{string.Join(", ", qb.shape)}].");
        else
            Fp8.CheckBlocks(qb, sb, "B");
        if (qa.shape[1] != qb.shape[1])
            throw new ArgumentException($"Fp8 GEMM contraction mismatch: A is [{string.Join(", ", qa.shape)}], B is [{string.Join(", ", qb.shape)}].");
        if (qa.dtype != Fp8.Float8E4M3 || qb.dtype != Fp8.Float8E4M3)
            throw new ArgumentException($"Fp8 GEMM operands must be float8_e4m3fn; got A {qa.dtype}, B {qb.dtype}.");
        if (rows < 0 || rows > qa.shape[0] || cols < 0 || cols > qb.shape[0])
            throw new ArgumentOutOfRangeException(nameof(rows), $"Output ({rows}, {cols}) exceeds the operands' rows ({qa.shape[0]}, {qb.shape[0]}).");
    }
}
