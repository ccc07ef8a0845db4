// Dequantises DeepSeek-V3 release-format FP8 weights: w (out, in) stored as float8_e4m3fn with a
// sibling weight_scale_inv (ceil(out/128), ceil(in/128)) in fp32; w_real = fp8 * scale_inv of its
// 128x128 block. Edge blocks may be partial (out or in not a multiple of 128). Runs on the device
// the tensors are on.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public static class Fp8BlockDequantizer
{
    public const int BlockSize = 128;

    /// <summary>Name suffix of the scale tensor in DeepSeek-V3 FP8 checkpoints ("x.weight" -> "x.weight_scale_inv").</summary>
    public const string ScaleSuffix = "_scale_inv";

    /// <summary>Returns weight.to(f32) * scaleInv expanded per 128x128 block, converted to <paramref name="outputDtype"/>.</summary>
    public static Tensor Dequantize(Tensor weight, Tensor scaleInv, ScalarType outputDtype = ScalarType.Float32)
    {
        if (weight.dim() != 2)
            throw new ArgumentException($"FP8 block dequantisation needs a 2-D weight, got shape {ShapeFormat.Of(weight.shape)}");
        long rows = weight.shape[0], cols = weight.shape[1];
        long blockRows = CeilDiv(rows, BlockSize), blockCols = CeilDiv(cols, BlockSize);
        if (scaleInv.dim() != 2 || scaleInv.shape[0] != blockRows || scaleInv.shape[1] != blockCols)
            throw new ArgumentException(
                $"scale_inv has shape {ShapeFormat.Of(scaleInv.shape)} but weight {ShapeFormat.Of(weight.shape)} needs [{blockRows}, {blockCols}] (one scale per {BlockSize}x{BlockSize} block)");

        using var scope = torch.NewDisposeScope();
        var w = weight.to(ScalarType.Float32);        // (R, C)
        var s = scaleInv.to(ScalarType.Float32);      // (R/128, C/128), rounded up
        Tensor result;
        if (rows % BlockSize == 0 && cols % BlockSize == 0)
        {
            // (R/128, 128, C/128, 128) * (R/128, 1, C/128, 1): no expanded copy of the scales.
            result = w.view(blockRows, BlockSize, blockCols, BlockSize)
                .mul(s.view(blockRows, 1, blockCols, 1))
                .view(rows, cols);
        }
        else
        {
            // Partial edge blocks: expand the scales to (R, C), cropping the last block row/column.
            var expanded = s.repeat_interleave(BlockSize, 0).narrow(0, 0, rows)
                .repeat_interleave(BlockSize, 1).narrow(1, 0, cols); // (R, C)
            result = w.mul(expanded);
        }
        return result.to(outputDtype).MoveToOuterDisposeScope();
    }

    private static long CeilDiv(long a, long b) => (a + b - 1) / b;
}
