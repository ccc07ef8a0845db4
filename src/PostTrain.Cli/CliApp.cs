// The `posttrain` command line (System.CommandLine): builds the verbs, parses, runs, and maps failures to exit
// codes: 0 ok, 1 unexpected error, 2 bad usage or config, 3 training stopped (e.g. NaN losses), 130 cancelled.
// Adding a verb = one ICliVerb file + one line in Verbs.
using System.CommandLine;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;

namespace PostTrain.Cli;

/// <summary>One `posttrain` subcommand.</summary>
public interface ICliVerb
{
    Command Build(CliIO io);
}

/// <summary>Where verbs write: normal output and errors.</summary>
public sealed record CliIO(TextWriter Out, TextWriter Error);

/// <summary>Bad usage found by a verb (unknown recipe, file exists, ...): printed as "error: ..." with exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

public static class CliApp
{
    public const int Ok = 0, Failed = 1, BadUsage = 2, Stopped = 3, Cancelled = 130;

    private static readonly ICliVerb[] Verbs =
        [new RunVerb(), new LsVerb(), new CpVerb(), new LogitsVerb(), new GenerateVerb(), new RewardVerb(), new EvalVerb(), new BenchTrainVerb(), new ServeVerb(), new ChatTemplateVerb(), new HubVerb(), new MergeVerb(), new LaunchVerb(), new DistCheckVerb(), new InitCheckpointVerb(), new ConsolidateVerb()];

    /// <summary>Registers the recipes of projects above PostTrain.Training (idempotent).</summary>
    public static void RegisterRecipes()
    {
        RecipeRegistry.Register(PostTrain.Eval.Recipe.EvalRecipe.Info);
        RecipeRegistry.Register(PostTrain.Pipeline.PipelineRecipe.Info);
    }

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct = default)
    {
        RegisterRecipes();
        var io = new CliIO(stdout, stderr);
        var root = new RootCommand("posttrain: post-train language models on TorchSharp (SFT, distillation, GRPO, eval)");
        foreach (var verb in Verbs) root.Subcommands.Add(verb.Build(io));

        if (args.Length == 0)
        {
            await root.Parse(["--help"]).InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, ct);
            return BadUsage;
        }
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) stderr.WriteLine($"error: {e.Message}");
            stderr.WriteLine("run 'posttrain --help' for usage");
            return BadUsage;
        }
        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false }, ct);
        }
        catch (Exception e) when (e is RecipeConfigException or UsageException or PostTrain.Core.Model.ModelConfigException
                                   or PostTrain.Core.Checkpoints.SafeTensorsException or PostTrain.Core.Checkpoints.CheckpointMismatchException
                                   or PostTrain.Core.Runtime.DeviceUnavailableException or PostTrain.Data.DataException or PostTrain.Data.Templates.ChatTemplateException
                                   or DirectoryNotFoundException or FileNotFoundException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return BadUsage;
        }
        catch (TrainingStoppedException e)
        {
            stderr.WriteLine($"training stopped: {e.Message}");
            return Stopped;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("cancelled");
            return Cancelled;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"error: {e}");
            return Failed;
        }
    }
}
