// Loading and saving a model as a Hugging Face directory: config.json + model.safetensors (or shards with
// model.safetensors.index.json). F32/BF16/F16 weights load into fp32 masters; FP8 (F8_E4M3 + weight_scale_inv
// 128x128 blocks) is dequantised on load. Saves are atomic (the whole directory is swapped in at once).
// Loading streams: the model is built where it will live (the device), then each checkpoint tensor is read from the
// files and copied into its parameter one at a time, so host memory never holds a second copy of the model; the
// report gives the load's wall time and the process's peak working set.
// Layout gives a model's checkpoint (HF names, stored dtypes, shapes) as meta tensors, without allocating a weight.
using System.Diagnostics;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Distributed;
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
        var clock = Stopwatch.StartNew();
        var config = ModelConfig.Load(Path.Combine(dir, "config.json"));
        using var tensors = CheckpointTensors.Open(dir);
        var model = new DeepSeekForCausalLM(config, device, expertParallel: expertParallel);
        try
        {
            var report = HfStateDict.Load(model, tensors.Shapes, tensors.Read, dir);
            if (device is not null && device.type != DeviceType.CPU) model.to(device);   // anything a constructor left on the CPU
            using var self = Process.GetCurrentProcess();
            return (model, report with { Seconds = clock.Elapsed.TotalSeconds, PeakHostBytes = self.PeakWorkingSet64 });
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Writes config.json and the weights (fp32, or bf16 when <paramref name="dtype"/> says so) atomically.</summary>
    public static void Save(DeepSeekForCausalLM model, string dir, ScalarType dtype = ScalarType.Float32,
        long maxShardBytes = 5_000_000_000, IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        if (model.ExpertParallel is not null)
            throw new InvalidOperationException("an expert-parallel model holds a slice of the experts: save it with SaveStreamed");
        SaveState(model.Config, model.state_dict(), dir, dtype, maxShardBytes, extraFiles);
    }

    /// <summary>An expert-parallel model's directory as Save writes a single-process model's (same names, shapes, bytes),
    /// by its EP group's rank 0: the routed experts come from <paramref name="experts"/> (this model's local stacks, by
    /// parameter name) one gathered stack at a time as the file writer reaches them, so the writer never holds every
    /// expert. Collective over the stream's group: the other ranks Serve it meanwhile, and the caller Finishes it.</summary>
    public static void SaveStreamed(DeepSeekForCausalLM model, string dir, ExpertGatherStream experts, ScalarType dtype = ScalarType.Float32,
        long maxShardBytes = 5_000_000_000, IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        int size = model.ExpertParallel?.Size ?? throw new InvalidOperationException("SaveStreamed is for expert-parallel models");
        using var scope = NewDisposeScope();
        var meta = new Device("meta");
        var state = model.state_dict();
        // single-process shapes: an expert stack's rows times the EP size, as meta tensors (nothing allocated)
        var full = state.ToDictionary(kv => kv.Key, kv => ExpertParallelCheckpoint.IsExpert(kv.Key)
            ? ExpertParallelCheckpoint.WholeMeta(kv.Value, size) : kv.Value, StringComparer.Ordinal);
        var exported = HfStateDict.Export(model.Config, full);
        var layout = exported.ToDictionary(kv => kv.Key, kv => empty(kv.Value.shape, dtype: StoredDtype(kv.Key, kv.Value, dtype), device: meta),
            StringComparer.Ordinal);
        var rows = new Dictionary<string, (string Stack, long Row)>(StringComparer.Ordinal);
        foreach (var (name, t) in full.Where(kv => ExpertParallelCheckpoint.IsExpert(kv.Key)))
        {
            long row = 0;
            foreach (var (hf, _) in HfStateDict.ExportTensor(name, t, model.Config)) rows[hf] = (name, row++);
        }
        Tensor Produce(string hf)
        {
            var stored = layout[hf].dtype;
            var t = rows.TryGetValue(hf, out var src) ? experts.Get(src.Stack)[src.Row] : exported[hf];
            return t.dtype == stored ? t : t.to(stored);
        }
        SafeTensors.SaveDirectoryStreaming(dir, layout, Produce, model.Config.ToJsonString(),
            new CheckpointSaveOptions { MaxShardBytes = maxShardBytes, ExtraFiles = extraFiles });
    }

    /// <summary>As Save, from a model state dict by model names (e.g. an EMA of the weights beside the model's buffers).</summary>
    public static void SaveState(ModelConfig config, IReadOnlyDictionary<string, Tensor> modelState, string dir, ScalarType dtype = ScalarType.Float32,
        long maxShardBytes = 5_000_000_000, IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        using var scope = NewDisposeScope();
        var state = HfStateDict.Export(config, modelState);
        var outState = state.ToDictionary(kv => kv.Key, kv => kv.Value.dtype == StoredDtype(kv.Key, kv.Value, dtype) ? kv.Value : kv.Value.to(StoredDtype(kv.Key, kv.Value, dtype)));
        SafeTensors.SaveDirectory(dir, outState, config.ToJsonString(),
            new CheckpointSaveOptions { MaxShardBytes = maxShardBytes, ExtraFiles = extraFiles });
    }

    /// <summary>The checkpoint Save would write for a model of this config, as meta tensors (HF names, stored dtypes and
    /// shapes): nothing is allocated, so it works at any size.</summary>
    public static Dictionary<string, Tensor> Layout(ModelConfig config, ScalarType dtype)
    {
        var model = new DeepSeekForCausalLM(config, new Device("meta"));
        return HfStateDict.Export(model).ToDictionary(kv => kv.Key, kv => kv.Value.to(StoredDtype(kv.Key, kv.Value, dtype)), StringComparer.Ordinal);
    }

    /// <summary>Floating tensors in <paramref name="dtype"/>, except the routing correction bias, which stays fp32
    /// (transformers keeps e_score_correction_bias in fp32).</summary>
    public static ScalarType StoredDtype(string name, Tensor t, ScalarType dtype) =>
        !t.is_floating_point() || name.EndsWith("e_score_correction_bias", StringComparison.Ordinal) ? t.dtype : dtype;
}
