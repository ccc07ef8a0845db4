// posttrain run <recipe.yaml|name> [key=value ...]: resolve a recipe config and run it.
using System.CommandLine;
using PostTrain.Training.Recipes;

namespace PostTrain.Cli;

public sealed class RunVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var recipe = new Argument<string>("recipe") { Description = "a recipe YAML file, or the name of a built-in recipe (posttrain ls)" };
        var overrides = new Argument<string[]>("overrides")
        {
            Description = "config overrides as dotted.key=value, e.g. optimizer.lr=1e-4 max_steps=100 data.splits=[train,dev]",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var command = new Command("run", "Run a training recipe") { recipe, overrides };
        command.SetAction((parse, ct) => RecipeRunner.RunAsync(parse.GetValue(recipe)!, parse.GetValue(overrides) ?? [], io.Out, ct));
        return command;
    }
}
