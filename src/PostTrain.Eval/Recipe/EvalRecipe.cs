// eval as a recipe: the same harness as `posttrain eval`, configured in YAML (models, tasks, sampling), so it can run
// from `posttrain run` and as the last step of a pipeline. Registered by the CLI (RecipeRegistry.Register), because
// this project sits above PostTrain.Training.
using PostTrain.Eval.Runner;
using PostTrain.Eval.Tasks;
using PostTrain.Training.Recipes;

namespace PostTrain.Eval.Recipe;

public sealed record EvalRecipeConfig : RecipeConfig
{
    /// <summary>Models as "label=dir" (or just "dir"); the first one is the baseline of the comparisons.</summary>
    public required List<string> Models { get; init; }
    /// <summary>Built-in task names (arithmetic, countdown, code) or task files.</summary>
    public required List<string> Tasks { get; init; }
    public int Samples { get; init; } = 4;
    public double Temperature { get; init; } = 0.8;
    public int MaxNewTokens { get; init; } = 256;
    public int? Limit { get; init; }
    public int BatchSize { get; init; } = 64;
    /// <summary>Chat template per model label (EvalSettings.ChatTemplates), e.g. {base: plain} for a base model
    /// pre-trained on raw text; "*" = every model not named; unset = auto.</summary>
    public Dictionary<string, string>? ChatTemplates { get; init; }
    public string Device { get; init; } = "auto";
    /// <summary>A run directory or metrics.jsonl whose training curves go into the report.</summary>
    public string? Metrics { get; init; }
    public string? RewardsDir { get; init; }
}

public sealed class EvalRecipe(EvalRecipeConfig cfg) : IRecipe
{
    public static readonly RecipeInfo Info = RecipeInfo.Of<EvalRecipeConfig>("eval",
        "Evaluate checkpoints on tasks (accuracy, pass@k, maj@k, CIs, comparison) into an HTML/Markdown/Parquet report",
        "eval-quickstart.yaml", c => new EvalRecipe(c));

    public Task<int> RunAsync(RecipeContext ctx, CancellationToken ct) => Task.Run(() =>
    {
        try
        {
            var settings = new EvalSettings
            {
                Samples = cfg.Samples, Temperature = cfg.Temperature, MaxNewTokens = cfg.MaxNewTokens, Limit = cfg.Limit,
                BatchSize = cfg.BatchSize, Seed = cfg.Seed, Device = cfg.Device,
                ChatTemplates = cfg.ChatTemplates is { Count: > 0 } t ? t : null,
            };
            var runner = new EvalRunner(settings, ctx.Log) { RewardsDir = cfg.RewardsDir };
            var result = runner.Run(cfg.Models.Select(EvalModel.Parse).ToList(), cfg.Tasks.Select(BuiltinTasks.Resolve).ToList(),
                cfg.OutputDir, cfg.Metrics, ct);
            if (!PostTrain.Core.Distributed.Dist.IsMain) return 0;   // rank 0 reports
            foreach (var m in result.Metrics)
                ctx.Log.WriteLine($"{m.Model} {m.Task}: accuracy {m.Accuracy:F3} {m.AccuracyCi}" +
                    string.Concat(m.PassAtK.Select(kv => $", pass@{kv.Key} {kv.Value:F3}")));
            foreach (var c in result.Comparisons)
                ctx.Log.WriteLine($"{c.Task}: {c.ModelB} - {c.ModelA} = {c.Difference:+0.000;-0.000;0.000} {c.DifferenceCi}, McNemar p = {c.PValue:G4}");
            return 0;
        }
        catch (EvalConfigException e)
        {
            throw new RecipeConfigException(e.Message);
        }
    }, ct);
}
