// posttrain reward ls | reward run <name-or-path> --input cases.jsonl [--output results.jsonl] [--option key=value ...]:
// list rewards (built-in, torch-backed such as `model`, and plugins in rewards/), or score JSONL cases with one and
// print a summary table. --option gives the reward's options as a recipe would (e.g. --option path=runs/rm/final).
using System.CommandLine;
using PostTrain.Rewards.Commands;
using PostTrain.Training.RewardModeling;

namespace PostTrain.Cli;

public sealed class RewardVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var dirOption = new Option<string>("--rewards-dir") { Description = "folder of reward plugins", DefaultValueFactory = _ => "rewards" };
        var ls = new Command("ls", "List built-in and plugin rewards") { dirOption };
        ls.SetAction(parse => RewardCommands.List(parse.GetValue(dirOption)!, io.Out, io.Error, TrainingRewardRegistry.Create));

        var name = new Argument<string>("reward") { Description = "a reward name (posttrain reward ls) or a plugin file (.js / .csx)" };
        var input = new Option<string>("--input") { Description = "JSONL cases: prompt, completion and any other columns", Required = true };
        var output = new Option<string?>("--output") { Description = "JSONL file for the results (default: standard output)" };
        var options = new Option<string[]>("--option") { Description = "a reward option as key=value (repeatable)" };
        var run = new Command("run", "Score JSONL cases with a reward") { name, input, output, dirOption, options };
        run.SetAction(parse => RewardCommands.Run(parse.GetValue(name)!, parse.GetValue(input)!, parse.GetValue(output),
            parse.GetValue(dirOption)!, io.Out, io.Error, Options(parse.GetValue(options)), registry: TrainingRewardRegistry.Create));

        return new Command("reward", "Author and try rewards") { ls, run };
    }

    private static Dictionary<string, object?>? Options(string[]? pairs)
    {
        if (pairs is null || pairs.Length == 0) return null;
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new UsageException($"--option '{pair}': expected key=value");
            result[pair[..eq]] = pair[(eq + 1)..];
        }
        return result;
    }
}
