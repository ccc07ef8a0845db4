// A recipe: a small class built from its typed config that runs one kind of training (torchtune-style: the
// concrete class reads as Setup / Train / SaveCheckpoint / Cleanup). RecipeContext carries what the runner
// resolved: where the config came from, the resolved YAML, and where to log.
using PostTrain.Training.Infra;

namespace PostTrain.Training.Recipes;

public interface IRecipe
{
    /// <summary>Runs to completion; returns the process exit code (0 = success).</summary>
    Task<int> RunAsync(RecipeContext ctx, CancellationToken ct);
}

public sealed record RecipeContext(string ConfigSource, string ResolvedYaml, TextWriter Log)
{
    /// <summary>The progress display the recipe's logging section asks for (plain lines go to <see cref="Log"/>).</summary>
    public IProgressReporter CreateProgress(LoggingConfig logging, long totalSteps, long startStep, ProgressLabels? labels = null) =>
        ProgressReporter.Create(logging.Progress, totalSteps, startStep, logging.PlainIntervalSeconds, Log, labels);
}

/// <summary>A registered recipe: its name, a one-line description, its YAML under recipes/, its config type and
/// how to build it from a bound config.</summary>
public sealed record RecipeInfo(string Name, string Description, string YamlFile, Type ConfigType, Func<RecipeConfig, IRecipe> Create)
{
    public static RecipeInfo Of<TConfig>(string name, string description, string yamlFile, Func<TConfig, IRecipe> create)
        where TConfig : RecipeConfig =>
        new(name, description, yamlFile, typeof(TConfig), c => create((TConfig)c));
}

/// <summary>A recipe's order of steps: Setup on the caller's thread (config errors surface at once), Train on a worker
/// thread (long and synchronous; torch dispose scopes are thread-static, so no await happens inside one), Cleanup
/// always, also after a failure or cancellation. Returns 0.</summary>
public static class RecipeSteps
{
    public static async Task<int> RunAsync(Action setup, Action train, Action cleanup, CancellationToken ct)
    {
        try
        {
            setup();
            await Task.Run(train, ct);
            return 0;
        }
        finally
        {
            cleanup();
        }
    }
}
