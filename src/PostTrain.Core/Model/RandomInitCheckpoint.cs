// Writes a random-initialised Hugging Face checkpoint of any size, tensor by tensor: the layout comes from the model
// built on the meta device (PretrainedModel.Layout: nothing allocated), and each tensor is drawn when its shard is
// written and freed once on disk, so the host holds one tensor at a time (the largest: the embedding or the head).
// Init as DeepSeekForCausalLM.InitWeights: norms 1, biases and the routing correction bias 0, every other weight
// N(0, std^2). Each tensor has its own generator, seeded from (seed, FNV-1a of its name), so a tensor's values do not
// depend on the shard layout or on the order tensors are written in. Draws happen on `device` (a GPU is far faster
// for 16B values) and are stored in `dtype`.
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public static class RandomInitCheckpoint
{
    /// <summary>Writes config.json and the shards; returns the layout written.</summary>
    public static ShardLayout Write(ModelConfig config, string dir, ScalarType dtype, long seed, double std = 0.02,
        long maxShardBytes = CheckpointSaveOptions.DefaultMaxShardBytes, Device? device = null, Action<string>? progress = null)
    {
        var layout = PretrainedModel.Layout(config, dtype);
        var plan = ShardLayout.Plan(layout, maxShardBytes, dir);
        SafeTensors.SaveDirectoryStreaming(dir, layout, name =>
        {
            var t = Value(name, layout[name], seed, std, device ?? CPU);
            progress?.Invoke(name);
            return t;
        }, config.ToJsonString(), new CheckpointSaveOptions { MaxShardBytes = maxShardBytes });
        return plan;
    }

    /// <summary>The value of one checkpoint tensor (dtype and shape of <paramref name="like"/>), drawn on <paramref name="device"/>.</summary>
    public static Tensor Value(string name, Tensor like, long seed, double std, Device device)
    {
        if (name.EndsWith("norm.weight", StringComparison.Ordinal) || name.Contains("layernorm"))
            return ones(like.shape, dtype: like.dtype, device: device);
        if (name.EndsWith(".bias", StringComparison.Ordinal) || name.EndsWith("e_score_correction_bias", StringComparison.Ordinal))
            return zeros(like.shape, dtype: like.dtype, device: device);
        ulong tensorSeed = (ulong)(seed ^ (long)Fnv1a(name));
        using var scope = NewDisposeScope();
        var values = empty(like.shape, dtype: ScalarType.Float32, device: device);
        if (device.type == DeviceType.CUDA)
        {
            // TorchSharp 0.107's Generator(seed, device) is a CPU generator, which CUDA sampling refuses: seed the
            // device's default generator instead (the same values for the same seed and name, on the device).
            torch.cuda.manual_seed(unchecked((long)tensorSeed));
            values.normal_(0, std);
        }
        else
        {
            using var gen = new Generator(tensorSeed, device);
            values.normal_(0, std, gen);
        }
        return values.to(like.dtype).MoveToOuterDisposeScope();
    }

    private static ulong Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s) { h ^= c; h *= 1099511628211UL; }
        return h;
    }
}
