// posttrain cp <name> <path>: copy a built-in recipe's YAML to edit it; its header comment is rewritten to the
// command that runs the copy.
using System.CommandLine;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;

namespace PostTrain.Cli;

public sealed class CpVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var name = new Argument<string>("name") { Description = "a built-in recipe (posttrain ls)" };
        var destination = new Argument<string>("path") { Description = "the file to write, or an existing directory to copy into" };
        var force = new Option<bool>("--force", "-f") { Description = "overwrite an existing file" };
        var command = new Command("cp", "Copy a built-in recipe's YAML to edit it") { name, destination, force };
        command.SetAction(parse =>
        {
            var info = RecipeRegistry.Get(parse.GetValue(name)!, "posttrain cp");
            var target = parse.GetValue(destination)!;
            if (Directory.Exists(target)) target = Path.Combine(target, info.YamlFile);
            if (File.Exists(target) && !parse.GetValue(force))
                throw new UsageException($"{target} already exists (use --force to overwrite)");
            var text = File.ReadAllText(RecipeFiles.Locate(info.YamlFile));
            if (RecipeFiles.HeaderCommand(text) is not null) text = $"# posttrain run {target}\n" + text.Split('\n', 2)[1];
            if (Path.GetDirectoryName(Path.GetFullPath(target)) is { } dir) Directory.CreateDirectory(dir);
            AtomicFile.WriteAllText(target, text);
            io.Out.WriteLine($"copied {info.Name} to {target}; run it with: posttrain run {target}");
            return CliApp.Ok;
        });
        return command;
    }
}
