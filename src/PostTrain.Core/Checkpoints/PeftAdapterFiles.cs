// A LoRA adapter directory as PEFT writes it: adapter_config.json (peft_type LORA, r, lora_alpha, lora_dropout,
// target_modules[, target_parameters, rank_pattern, alpha_pattern], bias none, base_model_name_or_path, task_type
// CAUSAL_LM; PeftAdapterConfig) and adapter_model.safetensors (fp32, PEFT's key names in the settings' PeftLayout), plus
// optional extra files (the tokenizer's). Written atomically as a directory; read back in either layout.
using System.Text.Json;
using System.Text.Json.Nodes;
using PostTrain.Core.Model;

namespace PostTrain.Core.Checkpoints;

public static class PeftAdapterFiles
{
    public const string ConfigFileName = "adapter_config.json";
    public const string WeightsFileName = "adapter_model.safetensors";

    public static bool IsAdapterDir(string dir) => File.Exists(Path.Combine(dir, ConfigFileName));

    public static void Save(string dir, LoraAdapters lora, string baseModel, IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        var config = PeftAdapterConfig.Build(lora, baseModel);
        var tensors = lora.PeftStateDict();
        try
        {
            AtomicFiles.ReplaceDirectory(dir, tmp =>
            {
                File.WriteAllText(Path.Combine(tmp, ConfigFileName), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
                SafeTensors.Save(Path.Combine(tmp, WeightsFileName), tensors);
                foreach (var (name, text) in extraFiles ?? new Dictionary<string, string>()) File.WriteAllText(Path.Combine(tmp, name), text);
            });
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>The adapter's settings (its PeftLayout included) and base model as its adapter_config.json gives them.</summary>
    public static (LoraSettings Settings, string BaseModel) ReadConfig(string dir)
    {
        string file = Path.Combine(dir, ConfigFileName);
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(file)) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not valid JSON ({e.Message})"); }
        string Need(string key) => root[key]?.ToString() ?? throw new InvalidDataException($"{file}: missing '{key}'");
        if (Need("peft_type") != "LORA") throw new InvalidDataException($"{file}: peft_type '{Need("peft_type")}' is not LORA");
        string weights = Path.Combine(dir, WeightsFileName);
        IEnumerable<string> keys = File.Exists(weights) ? SafeTensors.ReadHeader(weights).Keys : [];
        return (PeftAdapterConfig.Parse(root, file, keys), Need("base_model_name_or_path"));
    }

    /// <summary>Loads the adapter's tensors into <paramref name="lora"/> (attached with ReadConfig's settings, or a run's own),
    /// in the layout the directory was written in.</summary>
    public static void LoadWeights(string dir, LoraAdapters lora)
    {
        var layout = ReadConfig(dir).Settings.Layout;
        string file = Path.Combine(dir, WeightsFileName);
        var tensors = SafeTensors.Load(file);
        try { lora.LoadPeftStateDict(tensors, file, layout); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }
}
