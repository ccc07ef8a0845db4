// A LoRA adapter directory as PEFT writes it: adapter_config.json (peft_type LORA, r, lora_alpha, lora_dropout,
// target_modules, bias none, base_model_name_or_path, task_type CAUSAL_LM) and adapter_model.safetensors (fp32, PEFT's key
// names), plus optional extra files (the tokenizer's). Written atomically as a directory.
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
        var s = lora.Settings;
        var config = new JsonObject
        {
            ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = s.Rank, ["lora_alpha"] = s.Alpha, ["lora_dropout"] = s.Dropout,
            ["target_modules"] = new JsonArray(s.TargetModules.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
            ["bias"] = "none", ["base_model_name_or_path"] = baseModel, ["fan_in_fan_out"] = false, ["inference_mode"] = true,
            ["init_lora_weights"] = true, ["use_rslora"] = false, ["use_dora"] = false, ["modules_to_save"] = null,
        };
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

    /// <summary>The adapter's settings and base model as its adapter_config.json gives them.</summary>
    public static (LoraSettings Settings, string BaseModel) ReadConfig(string dir)
    {
        string file = Path.Combine(dir, ConfigFileName);
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(file)) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not valid JSON ({e.Message})"); }
        string Need(string key) => root[key]?.ToString() ?? throw new InvalidDataException($"{file}: missing '{key}'");
        if (Need("peft_type") != "LORA") throw new InvalidDataException($"{file}: peft_type '{Need("peft_type")}' is not LORA");
        var targets = root["target_modules"] switch
        {
            JsonArray a => a.Select(x => x!.ToString()).ToList(),
            JsonValue v => [v.ToString()],
            _ => throw new InvalidDataException($"{file}: missing 'target_modules'"),
        };
        // routed-expert adapters are not a PEFT setting (PEFT adapts every module the names match): they are in the weights
        string weights = Path.Combine(dir, WeightsFileName);
        bool routed = File.Exists(weights) && SafeTensors.ReadHeader(weights).Keys.Any(k => k.Contains(".mlp.experts.", StringComparison.Ordinal));
        var settings = new LoraSettings((int)root["r"]!.GetValue<double>(), root["lora_alpha"]!.GetValue<double>(),
            root["lora_dropout"]?.GetValue<double>() ?? 0, targets, routed);
        return (settings, Need("base_model_name_or_path"));
    }

    /// <summary>Loads the adapter's tensors into <paramref name="lora"/> (attached with ReadConfig's settings).</summary>
    public static void LoadWeights(string dir, LoraAdapters lora)
    {
        string file = Path.Combine(dir, WeightsFileName);
        var tensors = SafeTensors.Load(file);
        try { lora.LoadPeftStateDict(tensors, file); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }
}
