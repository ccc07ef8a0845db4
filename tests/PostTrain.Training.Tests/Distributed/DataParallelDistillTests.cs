// Data-parallel distillation through the CLI: `posttrain run distill.yaml` with a local random-init Micro teacher
// (sampled at temperature 1, 3 samples per problem, a regex reward so some samples pass and some fail) over 7 problems
// in shards of 3 (3 + 3 + 1: the last shard leaves rank 1 without a problem). On 2 ranks the dataset shards are the
// same bytes as one process's, and state.json / stats.json hold the same numbers (timings aside), for a 2-rank run
// stopped after its first shard (data.max_problems=3) and resumed on 2 ranks to all 7.
using System.Text.Json.Nodes;
using PostTrain.Training.Tests.Infra;

namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class DataParallelDistillTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public DataParallelDistillTests()
    {
        string[] topics = ["cats", "the sea", "a red kite", "rain", "numbers and letters", "tea", "mountains at dawn"];
        File.WriteAllLines(_tmp["problems.jsonl"], topics.Select((t, i) => $"{{\"prompt\": \"Write about {t}.\", \"id\": \"p{i}\"}}"));
        File.WriteAllText(_tmp["distill.yaml"], $$"""
            recipe: distill
            seed: 3
            teacher: { kind: local, path: micro-moe, device: cpu, dtype: float32, chat_template: plain, batch_size: 64 }
            data: { path: {{_tmp["problems.jsonl"]}}, prompt_column: prompt, id_column: id }
            sampling: { samples_per_problem: 3, temperature: 1.0, top_p: 1.0, max_tokens: 8, reasoning_format: none }
            rewards:
              - { name: regex, weight: 1.0, options: { pattern: "[a-z]" } }
            filters: { min_reward: 1.0, reject_truncated: false, max_repetition: null, language: null, max_kept_per_problem: 2 }
            output: { problems_per_shard: 3, resume: true }
            logging: { tensorboard: false, progress: plain, plain_interval_seconds: 1000 }
            """);
    }

    public void Dispose() => _tmp.Dispose();

    private (int, string) Cli(int ranks, string outputDir, params string[] extra)
    {
        string[] args = ["run", _tmp["distill.yaml"], $"output_dir={outputDir}", .. extra];
        return MpiRun.RunCli(ranks, args);
    }

    [Fact]
    public void TwoRanksWriteTheSameDatasetAsOneProcessAndResumeToIt()
    {
        string one = _tmp["one"], two = _tmp["two"];
        var (rc, output) = Cli(1, one);
        Assert.True(rc == 0, output);
        (rc, output) = Cli(2, two, "data.max_problems=3");
        Assert.True(rc == 0, output);
        Assert.Equal(1, output.Split('\n').Count(l => l.StartsWith("dataset: ")));   // rank 0 alone reports
        (rc, output) = Cli(2, two);
        Assert.True(rc == 0, output);
        Assert.Equal(1, output.Split('\n').Count(l => l.StartsWith("resuming: 1 shards done")));

        var shards = Directory.GetFiles(Path.Combine(one, "data")).Select(Path.GetFileName).Order().ToList();
        Assert.NotEmpty(shards);
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(one, "state.json")))!;
        long kept = state["counts"]!["kept"]!.GetValue<long>(), samples = state["counts"]!["samples"]!.GetValue<long>();
        Assert.True(kept > 0 && kept < samples, $"kept {kept} of {samples}: the toy task should keep some samples and reject others");
        Assert.Equal(shards, Directory.GetFiles(Path.Combine(two, "data")).Select(Path.GetFileName).Order().ToList());
        foreach (var f in shards)
            Assert.True(File.ReadAllBytes(Path.Combine(one, "data", f!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(two, "data", f!))),
                $"data/{f} on 2 ranks differs from one process's");
        foreach (var f in new[] { "state.json", "stats.json" })
            Assert.Equal(WithoutTimings(File.ReadAllText(Path.Combine(one, f))), WithoutTimings(File.ReadAllText(Path.Combine(two, f))));
    }

    /// <summary>The JSON without keys that hold wall-clock times (seconds, rates).</summary>
    private static string WithoutTimings(string json)
    {
        var node = JsonNode.Parse(json)!;
        void Strip(JsonNode? n)
        {
            if (n is JsonObject o)
            {
                foreach (var key in o.Select(kv => kv.Key).Where(k => k.Contains("second") || k.EndsWith("_per_s") || k.Contains("per_second")).ToList()) o.Remove(key);
                foreach (var kv in o.ToList()) Strip(kv.Value);
            }
            else if (n is JsonArray a) foreach (var x in a) Strip(x);
        }
        Strip(node);
        return node.ToJsonString();
    }
}
