// Resuming continues a run only if the run is the same: the resolved config saved beside the checkpoint is compared
// key by key with the one about to run. Keys that do not shape the trajectory may differ (logging, checkpointing,
// held-out evaluation, sample files, the device, the output folder, the fast path, activation recompute); any other
// difference (max_steps reshapes the schedule, optimizer, data, model, algorithm knobs) is refused with an error naming
// each key and both values, unless checkpoint.allow_config_change is true. A checkpoint saved without a resolved config
// (a recipe run from code with an empty RecipeContext.ResolvedYaml) has nothing to compare and resumes.
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using YamlDotNet.RepresentationModel;

namespace PostTrain.Training.Run;

public static class ResumeCheck
{
    private static readonly string[] FreePrefixes = ["logging.", "checkpoint.", "eval.", "distributed."];   // distributed: same numbers at any ZeRO stage
    private static readonly HashSet<string> FreeKeys =
    [
        "output_dir", "model.device", "fast_path", "recompute", "optimizer.fused", "samples_every_n_steps", "samples_groups",
        "data.eval_path", "data.eval_every_n_steps", "data.eval_batches", "data.eval_pairs",
    ];

    public static void Verify(CheckpointInfo ck, TrainerConfig cfg, string resolvedYaml)
    {
        var saved = Path.Combine(ck.Directory, RecipeRunner.ResolvedConfigFileName);
        if (cfg.Checkpoint.AllowConfigChange || !File.Exists(saved)) return;
        var before = File.ReadAllText(saved);
        if (Flatten(before).Count == 0) return;   // saved by a caller that had no resolved config (the recipe API): nothing to compare
        var changes = Changes(before, resolvedYaml);
        if (changes.Count == 0) return;
        throw new RecipeConfigException(
            $"resume: the config differs from the one saved with {ck.Directory} ({RecipeRunner.ResolvedConfigFileName}) in " +
            $"{changes.Count} key(s) that shape the run:\n    " + string.Join("\n    ", changes) +
            "\n  Resuming would not continue the same run. Use a new output_dir, set checkpoint.resume=false to start over, " +
            "or checkpoint.allow_config_change=true to resume anyway.");
    }

    /// <summary>"key: old -> new" for each key that differs (added and removed keys too), free keys left out.</summary>
    public static List<string> Changes(string savedYaml, string newYaml)
    {
        var (a, b) = (Flatten(savedYaml), Flatten(newYaml));
        return a.Keys.Union(b.Keys).Where(k => !IsFree(k)).Order(StringComparer.Ordinal)
            .Where(k => a.GetValueOrDefault(k) != b.GetValueOrDefault(k))
            .Select(k => $"{k}: {a.GetValueOrDefault(k) ?? "(absent)"} -> {b.GetValueOrDefault(k) ?? "(absent)"}")
            .ToList();
    }

    private static bool IsFree(string key) => FreeKeys.Contains(key) || FreePrefixes.Any(key.StartsWith);

    /// <summary>Dotted key -> value text; sequences and their items are rendered whole under their key.</summary>
    private static Dictionary<string, string> Flatten(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlMappingNode root) Walk(root, "", result);
        return result;
    }

    private static void Walk(YamlMappingNode node, string prefix, Dictionary<string, string> into)
    {
        foreach (var (k, v) in node.Children)
        {
            string key = prefix + ((YamlScalarNode)k).Value;
            if (v is YamlMappingNode m) Walk(m, key + ".", into);
            else into[key] = Render(v);
        }
    }

    private static string Render(YamlNode n) => n switch
    {
        YamlScalarNode s => s.Value ?? "null",
        YamlSequenceNode q => "[" + string.Join(", ", q.Children.Select(Render)) + "]",
        YamlMappingNode m => "{" + string.Join(", ", m.Children.Select(kv => $"{Render(kv.Key)}: {Render(kv.Value)}")) + "}",
        _ => n.ToString(),
    };
}
