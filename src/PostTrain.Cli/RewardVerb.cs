// posttrain reward ls | reward run <name-or-path> --input cases.jsonl [--output results.jsonl]: list rewards
// (built-in and plugins in rewards/), or score JSONL cases with one and print a summary table.
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
        var run = new Command("run", "Score JSONL cases with a reward") { name, input, output, dirOption };
        run.SetAction(parse => RewardCommands.Run(parse.GetValue(name)!, parse.GetValue(input)!, parse.GetValue(output),
            parse.GetValue(dirOption)!, io.Out, io.Error, registry: TrainingRewardRegistry.Create));

        return new Command("reward", "Author and try rewards") { ls, run };
    }
}
