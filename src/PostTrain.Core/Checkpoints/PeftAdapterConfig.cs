// adapter_config.json of a PEFT LoRA adapter, written and read in either PeftLayout.
// PerExpert: target_modules = the settings' names (gate_proj/up_proj/down_proj included); routed experts are detected from
// the weights' per-expert keys.
// FusedExperts (peft with transformers 5): target_modules = the attention names only; target_parameters = every adapted
// MLP parameter by its path inside a layer: mlp.experts.gate_up_proj, mlp.experts.down_proj (routed experts) and
// <mlp path>.<proj>.weight for the dense and shared-expert MLPs (mlp.gate_proj.weight, mlp.shared_experts.up_proj.weight);
// rank_pattern {".*\.gate_up_proj": 2r} and alpha_pattern {".*\.gate_up_proj": 2 alpha} (the pattern peft's own
// transformers-5 conversion writes); lora_dropout 0 when there are target_parameters (peft's ParamWrapper refuses
// dropout). Attention-only adapters are the same in both layouts.
using System.Text.Json.Nodes;
using PostTrain.Core.Model;

namespace PostTrain.Core.Checkpoints;

public static class PeftAdapterConfig
{
    public const string GateUpPattern = @".*\.gate_up_proj";

    public static JsonObject Build(LoraAdapters lora, string baseModel)
    {
        var s = lora.Settings;
        var mlp = LoraSettings.ExpertProjections;
        bool fused = s.Layout == PeftLayout.FusedExperts;
        var targets = fused ? s.TargetModules.Where(t => !mlp.Contains(t)).ToList() : s.TargetModules.ToList();
        var parameters = fused ? TargetParameters(lora) : [];
        var config = new JsonObject
        {
            ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = s.Rank, ["lora_alpha"] = s.Alpha,
            ["lora_dropout"] = parameters.Count > 0 ? 0.0 : s.Dropout,
            ["target_modules"] = Array(targets),
            ["bias"] = "none", ["base_model_name_or_path"] = baseModel, ["fan_in_fan_out"] = false, ["inference_mode"] = true,
            ["init_lora_weights"] = true, ["use_rslora"] = false, ["use_dora"] = false, ["modules_to_save"] = null,
        };
        if (parameters.Count > 0) config["target_parameters"] = Array(parameters);
        if (parameters.Contains("mlp.experts.gate_up_proj"))
        {
            config["rank_pattern"] = new JsonObject { [GateUpPattern] = 2 * s.Rank };
            config["alpha_pattern"] = new JsonObject { [GateUpPattern] = 2 * s.Alpha };
        }
        return config;
    }

    /// <summary>The adapted MLP parameters by their path inside a layer (model.layers.L. cut off), sorted.</summary>
    private static List<string> TargetParameters(LoraAdapters lora)
    {
        var mlp = LoraSettings.ExpertProjections;
        var dense = lora.Entries.Select(e => e.Path).Where(p => mlp.Contains(p[(p.LastIndexOf('.') + 1)..])).Select(p => InLayer(p) + ".weight");
        var routed = lora.ExpertEntries.Select(e => InLayer(e.Path) + (e.Proj == "down_proj" ? ".down_proj" : ".gate_up_proj"));
        return dense.Concat(routed).Distinct().Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>"model.layers.3.mlp.shared_experts.gate_proj" -> "mlp.shared_experts.gate_proj".</summary>
    private static string InLayer(string path)
    {
        var parts = path.Split('.');
        return parts.Length > 3 && parts[0] == "model" && parts[1] == "layers" ? string.Join('.', parts[3..]) : path;
    }

    private static JsonArray Array(IEnumerable<string> names) => new(names.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray());

    /// <summary>The settings an adapter_config.json describes; <paramref name="weightKeys"/> are the adapter file's tensor names.</summary>
    public static LoraSettings Parse(JsonNode root, string file, IEnumerable<string> weightKeys)
    {
        var mlp = LoraSettings.ExpertProjections;
        int rank = (int)(root["r"]?.GetValue<double>() ?? throw new InvalidDataException($"{file}: missing 'r'"));
        double alpha = root["lora_alpha"]?.GetValue<double>() ?? throw new InvalidDataException($"{file}: missing 'lora_alpha'");
        var targets = Names(root["target_modules"], file, "target_modules") ?? throw new InvalidDataException($"{file}: missing 'target_modules'");
        var parameters = Names(root["target_parameters"], file, "target_parameters") ?? [];
        bool routed;
        PeftLayout layout;
        if (parameters.Count > 0)
        {
            layout = PeftLayout.FusedExperts;
            routed = false;
            foreach (var p in parameters)
            {
                var seg = p.Split('.');
                if (seg[^1] == "gate_up_proj") { targets.AddRange(["gate_proj", "up_proj"]); routed = true; }
                else if (seg[^1] == "down_proj") { targets.Add("down_proj"); routed = true; }
                else if (seg.Length >= 2 && seg[^1] == "weight" && mlp.Contains(seg[^2])) targets.Add(seg[^2]);
                else throw new InvalidDataException($"{file}: target_parameters entry '{p}' is none PostTrain adapts " +
                    "(mlp.experts.gate_up_proj, mlp.experts.down_proj, or an MLP projection's weight such as mlp.shared_experts.gate_proj.weight)");
            }
            CheckPattern(root, "rank_pattern", 2.0 * rank, file);
            CheckPattern(root, "alpha_pattern", 2 * alpha, file);
        }
        else
        {
            layout = targets.Any(mlp.Contains) ? PeftLayout.PerExpert : PeftLayout.FusedExperts;
            routed = weightKeys.Any(k => k.Contains(".mlp.experts.", StringComparison.Ordinal));
        }
        return new LoraSettings(rank, alpha, root["lora_dropout"]?.GetValue<double>() ?? 0, targets.Distinct().ToList(), routed, layout);
    }

    private static List<string>? Names(JsonNode? node, string file, string key) => node switch
    {
        null => null,
        JsonArray a => a.Select(x => x?.ToString() ?? throw new InvalidDataException($"{file}: '{key}' holds a null")).ToList(),
        JsonValue v => [v.ToString()],
        _ => throw new InvalidDataException($"{file}: '{key}' must be a list of names"),
    };

    /// <summary>rank_pattern / alpha_pattern may only give gate_up_proj twice the rank / alpha (its two fused projections).</summary>
    private static void CheckPattern(JsonNode root, string key, double gateUp, string file)
    {
        if (root[key] is not JsonObject pattern) return;
        foreach (var (name, value) in pattern)
            if (!name.EndsWith("gate_up_proj", StringComparison.Ordinal) || value?.GetValue<double>() != gateUp)
                throw new InvalidDataException($"{file}: {key} entry '{name}': {value} is not one PostTrain writes " +
                    $"(only gate_up_proj: {gateUp}, its gate_proj and up_proj ranks side by side); per-module ranks are not supported");
    }
}
