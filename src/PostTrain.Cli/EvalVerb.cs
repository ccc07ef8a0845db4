// posttrain eval --model <dir> [--model <dir2> ...] --task <name|file> [...]: evaluates checkpoints on tasks and
// writes report.html / report.md / samples.{jsonl,parquet,csv} to --output. Re-running with the same --output resumes.
using System.CommandLine;
using PostTrain.Eval;
using PostTrain.Eval.Runner;
using PostTrain.Eval.Tasks;

namespace PostTrain.Cli;

public sealed class EvalVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var models = new Option<string[]>("--model") { Description = "a Hugging Face model folder, or label=folder; repeat to compare (the first is the baseline)", Required = true, AllowMultipleArgumentsPerToken = false };
        var tasks = new Option<string[]>("--task") { Description = $"a built-in task ({string.Join(", ", BuiltinTasks.ByName.Keys)}) or a task file (.yaml/.json); repeatable", Required = true };
        var samples = new Option<int>("--samples") { Description = "samples per problem for pass@k / maj@k (1 = greedy accuracy only)", DefaultValueFactory = _ => 1 };
        var temperature = new Option<double>("--temperature") { Description = "sampling temperature for --samples > 1", DefaultValueFactory = _ => 0.8 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "generated tokens per completion at most", DefaultValueFactory = _ => 256 };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N problems of each task" };
        var output = new Option<string>("--output") { Description = "output folder (re-use it to resume)", DefaultValueFactory = _ => "eval-out" };
        var metrics = new Option<string?>("--metrics") { Description = "a training run folder or its metrics.jsonl, for training curves in the report" };
        var batch = new Option<int>("--batch-size") { Description = "sequences per generation call", DefaultValueFactory = _ => 64 };
        var seed = new Option<long>("--seed") { Description = "sampling seed", DefaultValueFactory = _ => 1234 };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N", DefaultValueFactory = _ => "auto" };
        var templates = new Option<string[]>("--chat-template") { Description = "label=template (plain, deepseek_v3, model, model:NAME or a .jinja file) for that model's prompts, or a template for every model; repeatable (default auto: the model folder's own template, else DeepSeek-V3's)" };
        var rewards = new Option<string?>("--rewards-dir") { Description = "reward plugin folder for task checkers given by plugin name" };
        var command = new Command("eval", "Evaluate models on tasks (accuracy, pass@k, maj@k) and write reports")
        {
            models, tasks, samples, temperature, maxNew, limit, output, metrics, batch, seed, device, templates, rewards,
        };
        command.SetAction((parse, ct) =>
        {
            try
            {
                var settings = new EvalSettings
                {
                    Samples = parse.GetValue(samples), Temperature = parse.GetValue(temperature), MaxNewTokens = parse.GetValue(maxNew),
                    Limit = parse.GetValue(limit), BatchSize = parse.GetValue(batch), Seed = parse.GetValue(seed), Device = parse.GetValue(device)!,
                    ChatTemplates = TemplateOptions(parse.GetValue(templates) ?? []),
                };
                var runner = new EvalRunner(settings, io.Out) { RewardsDir = parse.GetValue(rewards) };
                var result = runner.Run(parse.GetValue(models)!.Select(EvalModel.Parse).ToList(),
                    parse.GetValue(tasks)!.Select(BuiltinTasks.Resolve).ToList(), parse.GetValue(output)!, parse.GetValue(metrics), ct);
                if (!PostTrain.Core.Distributed.Dist.IsMain) return Task.FromResult(CliApp.Ok);   // rank 0 reports
                foreach (var m in result.Metrics)
                    io.Out.WriteLine($"{m.Model} {m.Task}: accuracy {m.Accuracy:F3} {m.AccuracyCi}" +
                        string.Concat(m.PassAtK.Select(kv => $", pass@{kv.Key} {kv.Value:F3}")) + (m.MajAtK is double maj ? $", maj@{m.SamplesPerProblem} {maj:F3}" : ""));
                foreach (var c in result.Comparisons)
                    io.Out.WriteLine($"{c.Task}: {c.ModelB} - {c.ModelA} = {c.Difference:+0.000;-0.000;0.000} {c.DifferenceCi}, McNemar p = {c.PValue:G4}");
                return Task.FromResult(CliApp.Ok);
            }
            catch (EvalConfigException e)
            {
                throw new UsageException(e.Message);
            }
        });
        return command;
    }

    /// <summary>--chat-template values: "label=template", or a bare template for every model ("*").</summary>
    internal static Dictionary<string, string>? TemplateOptions(IReadOnlyList<string> values)
    {
        if (values.Count == 0) return null;
        var map = new Dictionary<string, string>();
        foreach (var v in values)
        {
            int eq = v.IndexOf('=');
            var (label, template) = eq > 0 ? (v[..eq], v[(eq + 1)..]) : (EvalSettings.AllModels, v);
            if (template.Length == 0) throw new UsageException($"--chat-template {v}: no template after '='");
            if (!map.TryAdd(label, template)) throw new UsageException($"--chat-template: two templates for '{label}'");
        }
        return map;
    }
}
