// Runs a pipeline's stages in order. Each stage is resolved like `posttrain run <recipe> key=value...` with its
// output_dir forced to <output_dir>/<name>, and fingerprinted: SHA-256 of its resolved config chained with the
// previous stage's fingerprint, so a change anywhere upstream reaches every later stage. A stage's folder holds
// stage.json (written atomically): "running" with the fingerprint when it starts, "done" with its wall time when it
// ends. Re-running the pipeline skips done stages whose fingerprint matches, re-enters a running one with the same
// fingerprint (the stage recipe resumes from its own checkpoints), and moves a stage whose config changed aside
// (<name>.stale-<time>, nothing deleted) before running it again. After every stage the pipeline's summary
// (pipeline.md, pipeline.json) is rewritten with each stage's headline numbers.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using YamlDotNet.RepresentationModel;

namespace PostTrain.Pipeline;

public sealed partial class PipelineRecipe(PipelineConfig cfg) : IRecipe
{
    public static readonly RecipeInfo Info = RecipeInfo.Of<PipelineConfig>("pipeline",
        "Stages of other recipes in order (SFT -> distill -> SFT -> reward model -> GRPO -> eval), resumable, one summary",
        "pipeline-quickstart.yaml", c => new PipelineRecipe(c));

    public const string MarkerFileName = "stage.json";

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    private static partial Regex StageName();

    [GeneratedRegex(@"\$\{([^}]*)\}")]
    private static partial Regex Reference();

    /// <summary>A stage resolved before anything runs: its recipe, bound config, resolved YAML and fingerprint.</summary>
    public sealed record PlannedStage(string Name, RecipeInfo Info, string RecipePath, RecipeConfig Config, string Yaml, string Dir,
        string Fingerprint, IReadOnlyList<string> Overrides)
    {
        /// <summary>What a run would do now: done (skip), resume, run, or rerun (the folder is from another config).</summary>
        public string State => StageMarker.Read(Dir) switch
        {
            { Status: StageMarker.Done } m when m.Fingerprint == Fingerprint => "done",
            { Status: StageMarker.Running } m when m.Fingerprint == Fingerprint => "resume",
            null when !Directory.Exists(Dir) || !Directory.EnumerateFileSystemEntries(Dir).Any() => "run",
            _ => "rerun",
        };
    }

    /// <summary>Resolves every stage up front, so a bad key in the last stage fails before the first one trains.</summary>
    public IReadOnlyList<PlannedStage> Plan(string configSource)
    {
        Validate(configSource);
        var plan = new List<PlannedStage>();
        string chain = "";
        var dirs = new Dictionary<string, string>(StringComparer.Ordinal) { ["output_dir"] = cfg.OutputDir };
        foreach (var stage in cfg.Stages.Where(s => !s.Skip))
        {
            var dir = Path.Combine(cfg.OutputDir, stage.Name);
            var overrides = Overrides(stage, dirs, configSource).Append($"output_dir={dir}").ToList();
            var path = RecipeRunner.ResolvePath(stage.Recipe);
            var (info, config, yaml) = RecipeRunner.Resolve(path, overrides);
            chain = Fingerprint(chain, yaml);
            plan.Add(new PlannedStage(stage.Name, info, path, config, yaml, dir, chain, overrides));
            dirs[stage.Name] = dir;
        }
        return plan;
    }

    public async Task<int> RunAsync(RecipeContext ctx, CancellationToken ct)
    {
        var plan = Plan(ctx.ConfigSource);
        ctx.Log.WriteLine($"pipeline: {string.Join(" -> ", plan.Select(p => $"{p.Name} ({p.State})"))}");
        var summary = new PipelineSummary(cfg.OutputDir);
        for (int i = 0; i < plan.Count; i++)
        {
            var (stage, info, dir) = (plan[i], plan[i].Info, plan[i].Dir);
            var marker = StageMarker.Read(dir);
            var header = $"== stage {i + 1}/{plan.Count}: {stage.Name} ({info.Name}, {stage.RecipePath}) ==";
            switch (stage.State)
            {
                case "done":
                    ctx.Log.WriteLine($"{header} done {marker!.FinishedUtc:u} in {Duration(marker.Seconds)}; skipped");
                    summary.Add(stage.Name, info.Name, dir, marker.Seconds, skipped: true);
                    continue;
                case "rerun":
                    var why = marker is null ? "holds files from a run of unknown config" : "ran with a different config (this stage's or an earlier one's)";
                    if (cfg.OnChangedStage == ChangedStagePolicy.Error)
                        throw new RecipeConfigException($"{ctx.ConfigSource}: stage '{stage.Name}': {dir} {why}; remove it or set on_changed_stage: rerun");
                    var stale = $"{dir}.stale-{DateTime.UtcNow:yyyyMMdd-HHmmss-fff}";
                    Directory.Move(dir, stale);
                    ctx.Log.WriteLine($"{header} {dir} {why}: moved to {stale}");
                    marker = null;
                    break;
                case "resume":
                    ctx.Log.WriteLine($"{header} resuming an interrupted run");
                    break;
                default:
                    ctx.Log.WriteLine(header);
                    break;
            }

            Directory.CreateDirectory(dir);
            AtomicFile.WriteAllText(Path.Combine(dir, RecipeRunner.ResolvedConfigFileName), stage.Yaml);
            double before = marker?.Seconds ?? 0;
            StageMarker.Write(dir, new StageMarker(stage.Name, info.Name, stage.Fingerprint, StageMarker.Running, before, DateTime.UtcNow));
            var sw = Stopwatch.StartNew();
            int code;
            try
            {
                code = await info.Create(stage.Config).RunAsync(new RecipeContext(stage.RecipePath, stage.Yaml, ctx.Log), ct);
            }
            finally
            {
                // a crash or Ctrl-C keeps "running" with the time spent so far, so a re-run resumes and adds to it
                StageMarker.Write(dir, new StageMarker(stage.Name, info.Name, stage.Fingerprint, StageMarker.Running,
                    before + sw.Elapsed.TotalSeconds, DateTime.UtcNow));
            }
            double seconds = before + sw.Elapsed.TotalSeconds;
            if (code != 0)
            {
                ctx.Log.WriteLine($"stage '{stage.Name}' failed (exit code {code}); fix it and run the pipeline again to resume from this stage");
                summary.Add(stage.Name, info.Name, dir, seconds, skipped: false, failed: true);
                summary.Write();
                return code;
            }
            StageMarker.Write(dir, new StageMarker(stage.Name, info.Name, stage.Fingerprint, StageMarker.Done, seconds, DateTime.UtcNow));
            ctx.Log.WriteLine($"stage '{stage.Name}' done in {Duration(seconds)}");
            summary.Add(stage.Name, info.Name, dir, seconds, skipped: false);
            summary.Write();
        }
        summary.Write();
        ctx.Log.WriteLine();
        ctx.Log.Write(summary.Markdown());
        ctx.Log.WriteLine($"pipeline summary: {Path.Combine(cfg.OutputDir, PipelineSummary.MarkdownFileName)}");
        return 0;
    }

    private void Validate(string source)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (cfg.Stages.Count == 0) throw new RecipeConfigException($"{source}: stages: the pipeline has no stages");
        for (int i = 0; i < cfg.Stages.Count; i++)
        {
            var s = cfg.Stages[i];
            if (!StageName().IsMatch(s.Name) || s.Name == "output_dir")
                throw new RecipeConfigException($"{source}: stages[{i}].name: '{s.Name}' is not a usable folder name (letters, digits, _ . -; not 'output_dir')");
            if (!seen.Add(s.Name)) throw new RecipeConfigException($"{source}: stages[{i}].name: '{s.Name}' is used by an earlier stage too");
            if (s.Set.ContainsKey("output_dir"))
                throw new RecipeConfigException($"{source}: stages[{i}].set.output_dir: a stage's folder is <output_dir>/{s.Name}; leave output_dir out");
        }
    }

    /// <summary>The stage's set: entries as key=value overrides, ${name} replaced by that earlier stage's folder.</summary>
    private IEnumerable<string> Overrides(PipelineStageConfig stage, IReadOnlyDictionary<string, string> dirs, string source)
    {
        foreach (var (key, value) in stage.Set)
        {
            var node = Substitute(value, dirs, $"{source}: stage '{stage.Name}': set.{key}");
            yield return $"{key}={ConfigYamlWriter.ToFlowText(node)}";
        }
    }

    private YamlNode Substitute(YamlNode node, IReadOnlyDictionary<string, string> dirs, string where) => node switch
    {
        YamlScalarNode s when s.Value is { } v && v.Contains("${") => new YamlScalarNode(Reference().Replace(v, m =>
        {
            var name = m.Groups[1].Value;
            if (dirs.TryGetValue(name, out var dir)) return dir;
            bool later = cfg.Stages.Any(x => x.Name == name && !x.Skip);
            throw new RecipeConfigException($"{where}: ${{{name}}}: " + (later
                ? $"stage '{name}' runs after this one; a stage can only use earlier stages' folders"
                : $"no earlier stage is named '{name}' (stages: {string.Join(", ", dirs.Keys.Where(k => k != "output_dir"))}; or ${{output_dir}})"));
        })) { Style = s.Style },
        YamlSequenceNode q => new YamlSequenceNode(q.Children.Select(c => Substitute(c, dirs, where))) { Style = q.Style },
        YamlMappingNode map => new YamlMappingNode(map.Children.Select(kv =>
            new KeyValuePair<YamlNode, YamlNode>(kv.Key, Substitute(kv.Value, dirs, where)))) { Style = map.Style },
        _ => node,
    };

    private static string Fingerprint(string previous, string resolvedYaml)
    {
        // the resolved YAML's first line repeats the command (paths and overrides), which is part of the config too
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes(previous + "\n" + resolvedYaml));
        return Convert.ToHexStringLower(bytes);
    }

    internal static string Duration(double seconds) => TimeSpan.FromSeconds(Math.Round(seconds)).ToString(seconds >= 3600 ? @"h\:mm\:ss" : @"m\:ss");
}

/// <summary>stage.json: a stage's state within a pipeline run.</summary>
public sealed record StageMarker(string Stage, string Recipe, string Fingerprint, string Status, double Seconds, DateTime FinishedUtc)
{
    public const string Running = "running", Done = "done";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static StageMarker? Read(string dir)
    {
        var path = Path.Combine(dir, PipelineRecipe.MarkerFileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<StageMarker>(File.ReadAllText(path), Json)
                ?? throw new RecipeConfigException($"{path}: empty stage marker");
        }
        catch (JsonException e)
        {
            throw new RecipeConfigException($"{path}: not a stage marker ({e.Message}); remove the file to run the stage again");
        }
    }

    public static void Write(string dir, StageMarker m) =>
        AtomicFile.WriteAllText(Path.Combine(dir, PipelineRecipe.MarkerFileName), JsonSerializer.Serialize(m, Json));
}
