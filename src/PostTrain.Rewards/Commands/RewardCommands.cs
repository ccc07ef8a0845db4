// The logic of `posttrain reward run` and `posttrain reward ls` (the CLI verbs call these).
//
// reward run <name-or-path> --input cases.jsonl [--output results.jsonl]: scores every case with one reward through
// RewardRunner (parallel, per-call timeout), writes one JSON line per case
//   {"line": 3, "id": ..., "score": 1, "reason": "...", "metrics": {...}, "status": "ok|error|timeout", "error": null, "ms": 0.41}
// ("id" only when the case has one) to --output (written atomically) or to stdout, then a summary table: count, mean
// (over non-null scores), nulls, errors, timeouts, p50/p95 ms (nearest-rank percentiles of the per-call times).
// Exit codes: 0 every call succeeded (null scores included); 1 some calls errored or timed out (results still
// written); 2 the command could not run (unknown reward, plugin does not load, bad input line), message on stderr.
// reward ls: built-in and plugin rewards with their one-line descriptions.
using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace PostTrain.Rewards.Commands;

public static class RewardCommands
{
    public static int Run(string nameOrPath, string inputJsonl, string? outputJsonl, string rewardsDir, TextWriter stdout, TextWriter stderr,
        IReadOnlyDictionary<string, object?>? options = null, RewardRunnerOptions? runnerOptions = null,
        Func<string, RewardRegistry>? registry = null)
    {
        IReward reward;
        IReadOnlyList<RewardCase> cases;
        try
        {
            reward = (registry ?? (d => new RewardRegistry(d)))(rewardsDir).Create(nameOrPath, options);
            cases = RewardCases.Read(inputJsonl);
        }
        catch (RewardConfigException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 2;
        }

        var batch = new RewardRunner([new WeightedReward(reward)], runnerOptions).Score(cases.Select(c => c.Input).ToList());
        var lines = cases.Select((c, i) => ResultLine(c, batch.Calls[i][0])).ToList();
        if (outputJsonl is null)
            foreach (var line in lines) stdout.WriteLine(line);
        else
            WriteAtomically(outputJsonl, lines);

        var calls = batch.Calls.Select(row => row[0]).ToList();
        WriteSummary(stdout, reward.Name, batch.Stats[0], calls);
        if (outputJsonl is not null) stdout.WriteLine($"wrote {lines.Count} results to {outputJsonl}");
        return batch.Stats[0].Errors + batch.Stats[0].Timeouts > 0 ? 1 : 0;
    }

    public static int List(string rewardsDir, TextWriter stdout) => List(rewardsDir, stdout, stdout);

    /// <param name="registry">Builds the registry from the plugin folder (default: the built-ins and plugins only;
    /// the CLI passes one that also has the torch-backed rewards).</param>
    public static int List(string rewardsDir, TextWriter stdout, TextWriter stderr, Func<string, RewardRegistry>? registry = null)
    {
        IReadOnlyList<RewardInfo> rewards;
        try
        {
            rewards = (registry ?? (d => new RewardRegistry(d)))(rewardsDir).List();
        }
        catch (RewardConfigException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 2;
        }
        var table = new Table().AddColumn("name").AddColumn("kind").AddColumn("description");
        foreach (var r in rewards) table.AddRow(Markup.Escape(r.Name), r.Kind, Markup.Escape(r.Path is null ? r.Description : $"{r.Description} ({r.Path})"));
        Console(stdout).Write(table);
        return 0;
    }

    /// <summary>Nearest-rank percentile (p in [0, 1]) of unsorted values; 0 for none.</summary>
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0) return 0;
        var sorted = values.Order().ToList();
        var rank = System.Math.Max(1, (int)System.Math.Ceiling(p * sorted.Count));
        return sorted[rank - 1];
    }

    // Relaxed escaping: results are read by people and tools, not embedded in HTML ("it's", not "it\u0027s").
    private static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string ResultLine(RewardCase c, RewardCall call)
    {
        var line = new Dictionary<string, object?> { ["line"] = c.Line };
        if (c.Input.Columns.TryGetValue("id", out var id)) line["id"] = id;
        line["score"] = call.Score;
        line["reason"] = call.Result.Reason;
        line["metrics"] = call.Result.Metrics ?? new Dictionary<string, double>();
        line["status"] = call.Status.ToString().ToLowerInvariant();
        line["error"] = call.Error;
        line["ms"] = System.Math.Round(call.Milliseconds, 3);
        return JsonSerializer.Serialize(line, Json);
    }

    private static void WriteSummary(TextWriter stdout, string name, RewardStats stats, IReadOnlyList<RewardCall> calls)
    {
        var ms = calls.Select(c => c.Milliseconds).ToList();
        var table = new Table()
            .AddColumn("reward").AddColumn("count").AddColumn("mean").AddColumn("nulls").AddColumn("errors")
            .AddColumn("timeouts").AddColumn("p50 ms").AddColumn("p95 ms");
        table.AddRow(Markup.Escape(name), stats.Count.ToString(CultureInfo.InvariantCulture),
            stats.Mean is { } m ? m.ToString("0.####", CultureInfo.InvariantCulture) : "-",
            stats.Nulls.ToString(CultureInfo.InvariantCulture), stats.Errors.ToString(CultureInfo.InvariantCulture),
            stats.Timeouts.ToString(CultureInfo.InvariantCulture),
            Percentile(ms, 0.50).ToString("0.###", CultureInfo.InvariantCulture), Percentile(ms, 0.95).ToString("0.###", CultureInfo.InvariantCulture));
        Console(stdout).Write(table);
        foreach (var message in stats.ErrorMessages) stdout.WriteLine($"error: {message}");
    }

    private static IAnsiConsole Console(TextWriter writer)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 120;
        return console;
    }

    private static void WriteAtomically(string path, IEnumerable<string> lines)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + $".tmp-{Environment.ProcessId}";
        File.WriteAllLines(temp, lines);
        File.Move(temp, full, overwrite: true);
    }
}
