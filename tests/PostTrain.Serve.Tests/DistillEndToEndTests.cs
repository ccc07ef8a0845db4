// The distill recipe with an OpenAI-compatible teacher that is a real `posttrain serve` on loopback HTTP (tiny-moe,
// random init with seed 0, CPU): greedy samples, verified by a regex reward. The expected dataset is computed
// independently by running the same model through the engine directly (the fixture's Reference): which problems pass,
// their completions, token counts and finish reasons; k = 2 greedy samples per problem are identical, so the second is
// always a duplicate. Checks the shards, state, stats and the statistics' arithmetic against that.
using System.Text.Json;
using System.Text.RegularExpressions;
using PostTrain.Core.Generation;
using PostTrain.Data.Readers;
using PostTrain.Training.Recipes;

namespace PostTrain.Serve.Tests;

public sealed class DistillEndToEndTests
{
    private const string Pattern = @"\+";   // random tiny-moe's greedy texts: some contain a '+', some do not
    private const int MaxTokens = 10;

    [Fact]
    public async Task Distill_from_a_posttrain_server_keeps_exactly_the_teachers_passing_greedy_outputs()
    {
        await using var server = await PostTrainServer.StartAsync(new ServeOptions { Model = "tiny-moe", Port = 0, Device = "cpu", Log = TextWriter.Null });
        var engine = new Reference();
        var dir = Directory.CreateTempSubdirectory("posttrain-distill-e2e-").FullName;
        try
        {
            var prompts = Enumerable.Range(0, 6).Select(i => $"What is {i + 3} + {2 * i}?").ToList();
            File.WriteAllLines(Path.Combine(dir, "problems.jsonl"), prompts.Select(p => JsonSerializer.Serialize(new { prompt = p })));
            File.WriteAllText(Path.Combine(dir, "distill.yaml"), $"""
                recipe: distill
                output_dir: {Path.Combine(dir, "run")}
                teacher: {"{"} kind: openai, base_url: "{server.BaseUri}", model: {server.ModelName}, max_concurrency: 4, timeout_seconds: 120, max_retries: 1 {"}"}
                data: {"{"} path: {Path.Combine(dir, "problems.jsonl")} {"}"}
                sampling: {"{"} samples_per_problem: 2, temperature: 0, max_tokens: {MaxTokens}, reasoning_format: none {"}"}
                rewards:
                  - {"{"} name: regex, options: {"{"} pattern: '{Pattern}' {"}"} {"}"}
                filters: {"{"} reject_truncated: false, language: null, max_repetition: null, min_completion_tokens: 1 {"}"}
                output: {"{"} problems_per_shard: 4 {"}"}
                logging: {"{"} tensorboard: false, progress: plain {"}"}
                """);
            var log = new StringWriter();
            Assert.Equal(0, await RecipeRunner.RunAsync(Path.Combine(dir, "distill.yaml"), [], log, CancellationToken.None));

            // the reference: the engine's greedy completion of each chat-rendered prompt
            var expected = prompts.Select((p, i) =>
            {
                var ids = engine.ChatPrompt(p);
                var r = engine.Generate(ids, MaxTokens)[0];
                return (Index: i, engine.Expected(r).Text, PromptTokens: ids.Length, r.Length, Finish: r.FinishReason == FinishReason.Stop ? "stop" : "length");
            }).ToList();
            var passing = expected.Where(e => Regex.IsMatch(e.Text, Pattern)).ToList();
            Assert.True(passing.Count >= 1 && passing.Count < prompts.Count,   // the case has both kinds of problems
                "greedy outputs: " + string.Join(" | ", expected.Select(e => JsonSerializer.Serialize(e.Text))));

            var rows = DatasetReader.Read(Path.Combine(dir, "run", "data")).ToList();
            Assert.Equal(passing.Select(e => (e.Index, 0, e.Text, e.PromptTokens, e.Length, e.Finish)),
                rows.Select(r => ((int)r["problem_index"]!, (int)r["sample_index"]!, (string)r["completion"]!,
                    (int)r["prompt_tokens"]!, (int)r["completion_tokens"]!, (string)r["finish_reason"]!)));
            Assert.All(rows, r => Assert.Equal($"openai:{server.ModelName}@{server.BaseUri}", r["teacher"]));
            Assert.All(rows, r => Assert.Equal(prompts[(int)r["problem_index"]!], r["prompt"]));

            var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "run", "stats.json"))).RootElement;
            var rejected = stats.GetProperty("rejected");
            Assert.Equal(12, stats.GetProperty("samples").GetInt64());
            Assert.Equal(passing.Count, stats.GetProperty("kept").GetInt64());
            Assert.Equal(passing.Count, rejected.GetProperty("duplicate").GetInt64());                  // the identical second sample
            Assert.Equal(2 * (prompts.Count - passing.Count), rejected.GetProperty("wrong").GetInt64());
            Assert.Equal(2.0 * passing.Count / 12, stats.GetProperty("pass_rate").GetDouble(), 12);
            Assert.Equal((double)passing.Count / prompts.Count, stats.GetProperty("solve_rate").GetDouble(), 12);
            Assert.Equal(2 * expected.Sum(e => (long)e.Length), stats.GetProperty("completion_tokens").GetInt64());

            var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "run", "state.json"))).RootElement;
            Assert.Equal([4, 6], state.GetProperty("shards").EnumerateArray().Select(s => s.GetProperty("end_problem").GetInt32()));
            var files = Directory.GetFiles(Path.Combine(dir, "run", "data")).Select(Path.GetFileName).Order().ToList();
            var shardsWithRows = new[] { passing.Any(e => e.Index < 4), passing.Any(e => e.Index >= 4) };
            Assert.Equal(new[] { "shard-00000.parquet", "shard-00001.parquet" }.Where((_, i) => shardsWithRows[i]), files);
            Assert.Contains($"teacher: openai:{server.ModelName}", log.ToString());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
