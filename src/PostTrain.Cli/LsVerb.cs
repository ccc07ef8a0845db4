// posttrain ls: the built-in recipes, their descriptions and the command that runs each.
using System.CommandLine;
using PostTrain.Training.Recipes;

namespace PostTrain.Cli;

public sealed class LsVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var command = new Command("ls", "List the built-in recipes");
        command.SetAction(_ =>
        {
            int width = RecipeRegistry.All.Max(r => r.Name.Length);
            foreach (var r in RecipeRegistry.All)
            {
                string run = RecipeFiles.HeaderCommand(File.ReadAllText(RecipeFiles.Locate(r.YamlFile))) ?? $"posttrain run {r.Name}";
                io.Out.WriteLine($"{r.Name.PadRight(width)}  {r.Description}");
                io.Out.WriteLine($"{new string(' ', width)}  {run}");
            }
            return CliApp.Ok;
        });
        return command;
    }
}
