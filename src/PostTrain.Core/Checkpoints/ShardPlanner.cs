// Splits a state dict into shards the way huggingface_hub does: walk the tensors in order, start a
// new shard when the next tensor would push the current one past the limit, and give a tensor
// larger than the limit a shard of its own. The walk order here is "natural" name order
// (model.layers.2 before model.layers.10), so shards follow the layer order whatever order the
// dictionary has. Shard files are named model-0000i-of-0000n.safetensors.
namespace PostTrain.Core.Checkpoints;

internal static class ShardPlanner
{
    public static List<List<string>> Split(IReadOnlyDictionary<string, long> byteSizes, long maxShardBytes)
    {
        if (maxShardBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), maxShardBytes, "must be positive");
        var shards = new List<List<string>>();
        var current = new List<string>();
        long currentBytes = 0;
        foreach (var name in byteSizes.Keys.OrderBy(n => n, NaturalComparer.Instance))
        {
            long size = byteSizes[name];
            if (size > maxShardBytes)
            {
                shards.Add([name]);
                continue;
            }
            if (currentBytes + size > maxShardBytes && current.Count > 0)
            {
                shards.Add(current);
                current = [];
                currentBytes = 0;
            }
            current.Add(name);
            currentBytes += size;
        }
        if (current.Count > 0) shards.Add(current);
        return shards;
    }

    public static string ShardFileName(int index, int count) => $"model-{index + 1:D5}-of-{count:D5}.safetensors";
}
