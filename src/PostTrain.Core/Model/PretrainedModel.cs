// Loading and saving a model as a Hugging Face directory: config.json + model.safetensors (or shards with
// model.safetensors.index.json). F32/BF16/F16 weights load into fp32 masters; FP8 (F8_E4M3 + weight_scale_inv
// 128x128 blocks) is dequantised on load. Saves are atomic (the whole directory is swapped in at once).
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public static class PretrainedModel
{
    /// <summary>Builds the model from dir/config.json and copies the checkpoint in. Errors name the file and tensor.</summary>
    /// <param name="expertParallel">Expert parallelism: the model holds, and the load copies, this rank's experts only.</param>
    public static (DeepSeekForCausalLM Model, LoadReport Report) Load(string dir, Device? device = null,
        PostTrain.Core.Distributed.ExpertParallelism? expertParallel = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: model directory not found");
        var config = ModelConfig.Load(Path.Combine(dir, "config.json"));
        var model = new DeepSeekForCausalLM(config, expertParallel: expertParallel);
        var tensors = SafeTensors.Load(dir, new SafeTensorsLoadOptions { DequantizeFp8 = true, Filter = HfStateDict.ReadFilter(model) });
        try
        {
            var report = HfStateDict.Load(model, tensors, dir);
            if (device is not null && device.type != DeviceType.CPU) model.to(device);
            return (model, report);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Writes config.json and the weights (fp32, or bf16 when <paramref name="dtype"/> says so) atomically.</summary>
    /// <param name="consolidated">An expert-parallel model's state with every expert (ExpertParallelCheckpoint.Consolidate).</param>
    public static void Save(DeepSeekForCausalLM model, string dir, ScalarType dtype = ScalarType.Float32,
        long maxShardBytes = 5_000_000_000, IReadOnlyDictionary<string, string>? extraFiles = null,
        IEnumerable<(string Name, Tensor Value)>? consolidated = null)
    {
        using var scope = NewDisposeScope();
        var state = HfStateDict.Export(model, consolidated);
        var outState = state.ToDictionary(kv => kv.Key, kv => kv.Value.dtype == dtype || !kv.Value.is_floating_point() ? kv.Value : kv.Value.to(dtype));
        // the correction bias stays fp32 (transformers keeps e_score_correction_bias in fp32)
        foreach (var k in state.Keys.Where(k => k.EndsWith("e_score_correction_bias", StringComparison.Ordinal)).ToList())
            outState[k] = state[k];
        SafeTensors.SaveDirectory(dir, outState, model.Config.ToJsonString(),
            new CheckpointSaveOptions { MaxShardBytes = maxShardBytes, ExtraFiles = extraFiles });
    }
}
