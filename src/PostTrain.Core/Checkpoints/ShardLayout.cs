// The file layout of a Hugging Face checkpoint directory, computed from names, dtypes and shapes alone (so it works on
// meta tensors: no weight is allocated): the shards ShardPlanner cuts (at most MaxShardBytes of tensor data each, a
// larger tensor alone), their file names (model.safetensors when one shard, else model-0000i-of-0000n.safetensors),
// the weight map and total_size (the sum of the tensors' stored bytes), and the index file's exact text.
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

/// <summary>One shard file: its name, the tensors it holds (in planner order) and their stored bytes.</summary>
public sealed record ShardFile(string FileName, IReadOnlyList<string> Tensors, long Bytes);

public sealed record ShardLayout(IReadOnlyList<ShardFile> Files, long TotalSize, IReadOnlyDictionary<string, string> WeightMap)
{
    /// <summary>Whether the directory has model.safetensors.index.json (more than one shard).</summary>
    public bool Sharded => Files.Count > 1;

    /// <summary>Plans the shards of <paramref name="tensors"/> (any device, the meta device included; only dtype and shape are read).</summary>
    public static ShardLayout Plan(IReadOnlyDictionary<string, Tensor> tensors, long maxShardBytes, string where)
    {
        var sizes = tensors.ToDictionary(kv => kv.Key, kv => SafeTensorsFileWriter.DataBytes(where, kv.Key, kv.Value), StringComparer.Ordinal);
        var shards = ShardPlanner.Split(sizes, maxShardBytes);
        if (shards.Count == 0) shards.Add([]);   // an empty state dict is one empty model.safetensors
        var files = new List<ShardFile>(shards.Count);
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string file = shards.Count == 1 ? SafeTensorsCheckpoint.SingleFileName : ShardPlanner.ShardFileName(i, shards.Count);
            files.Add(new ShardFile(file, shards[i], shards[i].Sum(n => sizes[n])));
            foreach (var n in shards[i]) map[n] = file;
        }
        return new ShardLayout(files, sizes.Values.Sum(), map);
    }

    /// <summary>model.safetensors.index.json's text as transformers writes it.</summary>
    public string IndexJson() => ShardIndex.Write(TotalSize, WeightMap);
}
