// A consolidated Hugging Face model directory from a training checkpoint (what `posttrain consolidate` writes):
// the step's model/ directory (config.json, tokenizer files, weights) re-written as one process saves a model
// (model.safetensors, or shards + model.safetensors.index.json past max_shard_bytes), with every parameter that a
// distributed checkpoint stores sharded over the ranks (param/<name> in the manifest) assembled whole from its pieces
// and written under its Hugging Face name(s) (a causal LM's expert stack as one tensor per expert), replacing
// whatever model/ held under those names. The checkpoint must be committed (manifest.json or trainer_state.json).
// A LoRA step (model/ is a PEFT adapter directory) is refused with a pointer to `posttrain merge`.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Training.Infra;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

public static class CheckpointExport
{
    /// <summary>Writes the consolidated model of checkpoint <paramref name="checkpointDir"/> to <paramref name="outDir"/>;
    /// returns the number of tensors written.</summary>
    public static int Consolidate(string checkpointDir, string outDir, long maxShardBytes)
    {
        if (!Directory.Exists(checkpointDir)) throw new InvalidDataException($"{checkpointDir}: checkpoint directory not found");
        if (!CheckpointManager.IsCommitted(checkpointDir))
            throw new InvalidDataException($"{checkpointDir}: neither {DistCheckpointManifest.FileName} nor {CheckpointManager.StateFileName}: " +
                "not a committed checkpoint (a save killed midway, or not a step directory)");
        string model = Path.Combine(checkpointDir, TrainingRun.ModelDirName);
        if (!Directory.Exists(model)) throw new InvalidDataException($"{model}: the checkpoint has no model directory");
        if (PeftAdapterFiles.IsAdapterDir(model))
            throw new InvalidDataException($"{model}: a LoRA adapter directory (PEFT format, usable as it is); " +
                $"`posttrain merge --adapter {model} --output <dir>` folds it into its base model");
        var extra = Directory.EnumerateFiles(model)      // tokenizer files and the like travel along
            .Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal) && Path.GetFileName(f) is not (IndexFileName or ConfigFileName))
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        using var scope = NewDisposeScope();
        var state = SafeTensors.Load(model);
        string configFile = Path.Combine(model, ConfigFileName);
        string? configJson = File.Exists(configFile) ? File.ReadAllText(configFile) : null;
        if (DistCheckpointReader.IsCommitted(checkpointDir))
        {
            using var reader = DistCheckpointReader.Open(checkpointDir);
            var sharded = reader.Manifest.Tensors.Keys.Where(k => k.StartsWith(DistributedCheckpoint.ParamPrefix, StringComparison.Ordinal)).ToList();
            if (sharded.Count > 0 && configJson is null)
                throw new InvalidDataException($"{model}: no config.json, so the sharded parameters cannot be named ({sharded[0]}, ...)");
            var config = sharded.Count > 0 ? ModelConfig.Load(configFile) : null;
            foreach (var key in sharded)
                foreach (var (hf, t) in HfStateDict.ExportTensor(key[DistributedCheckpoint.ParamPrefix.Length..], reader.Read(key), config!))
                    state[hf] = t;
        }
        SafeTensors.SaveDirectory(outDir, state, configJson, new CheckpointSaveOptions { MaxShardBytes = maxShardBytes, ExtraFiles = extra });
        return state.Count;
    }

    private const string ConfigFileName = "config.json", IndexFileName = "model.safetensors.index.json";
}
