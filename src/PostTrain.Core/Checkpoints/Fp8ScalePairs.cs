// Finds DeepSeek-V3 FP8 weight/scale pairs in a checkpoint: an F8_E4M3 tensor "x" whose sibling
// "x_scale_inv" exists (possibly in another shard). Returns weight name -> scale name.
namespace PostTrain.Core.Checkpoints;

internal static class Fp8ScalePairs
{
    public static Dictionary<string, string> Find(IReadOnlyDictionary<string, TensorInfo> tensors)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var info in tensors.Values)
        {
            string scale = info.Name + Fp8BlockDequantizer.ScaleSuffix;
            if (info.Dtype == "F8_E4M3" && tensors.ContainsKey(scale))
                pairs[info.Name] = scale;
        }
        return pairs;
    }
}
