// Finds DeepSeek-V3 FP8 weight/scale pairs in a checkpoint: an F8_E4M3 tensor "x" whose sibling
// "x_scale_inv" exists (possibly in another shard). Returns weight name -> scale name, after
// checking from the headers alone that each weight is 2-D and its scale has one fp32 entry per
// 128x128 block, so a bad pair fails before any data is read.
namespace PostTrain.Core.Checkpoints;

internal static class Fp8ScalePairs
{
    public static Dictionary<string, string> Find(IReadOnlyDictionary<string, TensorInfo> tensors)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var info in tensors.Values)
        {
            string scaleName = info.Name + Fp8BlockDequantizer.ScaleSuffix;
            if (info.Dtype != "F8_E4M3" || !tensors.TryGetValue(scaleName, out var scale)) continue;
            if (info.Shape.Length != 2)
                throw new SafeTensorsException(info.File, info.Name, $"FP8 weight with a scale must be 2-D, has shape {info.ShapeText}");
            long[] needed = [CeilDiv(info.Shape[0]), CeilDiv(info.Shape[1])];
            if (!scale.Shape.SequenceEqual(needed))
                throw new SafeTensorsException(scale.File, scaleName,
                    $"scale has shape {scale.ShapeText} but weight '{info.Name}' {info.ShapeText} needs {ShapeFormat.Of(needed)} (one per {Fp8BlockDequantizer.BlockSize}x{Fp8BlockDequantizer.BlockSize} block)");
            if (scale.Dtype is not ("F32" or "BF16" or "F16"))
                throw new SafeTensorsException(scale.File, scaleName, $"scale has dtype {scale.Dtype}, expected a float type (F32)");
            pairs[info.Name] = scaleName;
        }
        return pairs;
    }

    private static long CeilDiv(long n) => (n + Fp8BlockDequantizer.BlockSize - 1) / Fp8BlockDequantizer.BlockSize;
}
