// The distill recipe end to end on the CPU in seconds, with a local teacher (the built-in micro-moe, random init from
// the seed, byte tokenizer) and a regex reward (a sample passes when it contains a lowercase letter), so some samples
// pass and some do not. Checks: the shards and stats agree with an independent recount of the rows' rewards; a run
// stopped after its first shard and resumed generates only the remaining problems and ends with exactly the dataset
// and statistics of an uninterrupted run; changed settings refuse to resume; the sft recipe trains on the output.
using System.Text.Json;
using System.Text.RegularExpressions;
using PostTrain.Data.Examples;
using PostTrain.Data.Readers;
using PostTrain.Training.Distill;
using PostTrain.Training.Recipes;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;

namespace PostTrain.Training.Tests.Distill;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class DistillRecipeTests
{
    private const int Problems = 10, K = 3, PerShard = 4;

    private static string Yaml(TempDir tmp, string run) => $"""
        recipe: distill
        output_dir: {tmp[run]}
        seed: 7
        teacher: {"{"} kind: local, path: micro-moe, device: cpu, dtype: float32, chat_template: plain, batch_size: 8 {"}"}
        data: {"{"} path: {tmp["problems.jsonl"]} {"}"}
        sampling: {"{"} samples_per_problem: {K}, temperature: 1.0, top_p: 1.0, max_tokens: 6, reasoning_format: none {"}"}
        rewards:
          - {"{"} name: regex, options: {"{"} pattern: "[a-z]" {"}"} {"}"}
        filters: {"{"} min_reward: 1.0, min_completion_tokens: 1, reject_truncated: false, language: null, max_repetition: null, max_kept_per_problem: 2 {"}"}
        output: {"{"} problems_per_shard: {PerShard} {"}"}
        logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
        """;

    private static TempDir Setup()
    {
        var tmp = new TempDir();
        File.WriteAllLines(tmp["problems.jsonl"], Enumerable.Range(0, Problems).Select(i => $"{{\"prompt\": \"Q{i}: say\", \"answer\": {i}}}"));
        return tmp;
    }

    private static async Task<(DistillRecipe Recipe, string Log)> Run(TempDir tmp, string run, CancellationToken ct = default,
        Action<DistillRecipe>? hook = null, params string[] overrides)
    {
        File.WriteAllText(tmp[run + ".yaml"], Yaml(tmp, run));
        var (_, config, yaml) = RecipeRunner.Resolve(tmp[run + ".yaml"], overrides);
        var recipe = new DistillRecipe((DistillConfig)config);
        hook?.Invoke(recipe);
        var log = new StringWriter();
        Assert.Equal(0, await recipe.RunAsync(new RecipeContext(tmp[run + ".yaml"], yaml, log), ct));
        return (recipe, log.ToString());
    }

    /// <summary>Every row of the output as canonical JSON, in file order.</summary>
    private static List<string> Rows(string runDir) =>
        DatasetReader.Read(Path.Combine(runDir, "data")).Select(r => JsonSerializer.Serialize(r.Columns)).ToList();

    private static JsonElement Stats(string runDir) => JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "stats.json"))).RootElement;

    [Fact]
    public async Task Shards_hold_the_kept_samples_with_provenance_and_the_stats_add_up()
    {
        using var tmp = Setup();
        var (recipe, log) = await Run(tmp, "run");
        var dir = tmp["run"];

        Assert.Equal(Problems, recipe.ProblemsGenerated);
        var rows = DatasetReader.Read(Path.Combine(dir, "data")).ToList();
        var files = Directory.GetFiles(Path.Combine(dir, "data")).Select(Path.GetFileName).Order().ToList();
        Assert.All(files, f => Assert.Matches(@"^shard-0000[0-2]\.parquet$", f));   // 3 shards (4 + 4 + 2 problems), none empty expected
        Assert.NotEmpty(rows);

        var lower = new Regex("[a-z]");
        foreach (var r in rows)
        {
            var completion = (string)r["completion"]!;
            Assert.Matches(lower, completion);                                   // rejection sampling: only passing samples
            Assert.Equal(1.0, r["reward"]);
            var messages = (IReadOnlyList<object?>)r["messages"]!;
            var last = (IReadOnlyDictionary<string, object?>)messages[^1]!;
            Assert.Equal(("assistant", completion), ((string)last["role"]!, (string)last["content"]!));
            int p = (int)r["problem_index"]!;
            Assert.Equal($"Q{p}: say", r["prompt"]);
            Assert.Equal($"problems.jsonl:{p + 1}", r["problem_id"]);           // JSONL rows are 1-based lines
            Assert.Equal("local:micro-moe", r["teacher"]);
            Assert.InRange((int)r["sample_index"]!, 0, K - 1);
            var verdict = (IReadOnlyDictionary<string, object?>)((IReadOnlyList<object?>)r["verdicts"]!)[0]!;
            Assert.Equal(("regex", 1.0), ((string)verdict["name"]!, (double)verdict["score"]!));
            Assert.InRange((int)r["completion_tokens"]!, 1, 6);
            Assert.Contains((string)r["finish_reason"]!, new[] { "stop", "length" });   // a random model rarely stops: truncated ones are kept here
        }
        // at most 2 per problem, no duplicate text within a problem
        Assert.All(rows.GroupBy(r => (int)r["problem_index"]!), g =>
        {
            Assert.InRange(g.Count(), 1, 2);
            Assert.Equal(g.Count(), g.Select(r => SampleFilter.Normalize((string)r["completion"]!)).Distinct().Count());
        });

        var stats = Stats(dir);
        Assert.Equal(Problems, stats.GetProperty("problems").GetInt64());
        Assert.Equal(Problems * K, stats.GetProperty("samples").GetInt64());
        Assert.Equal(rows.Count, stats.GetProperty("kept").GetInt64());
        long rejected = stats.GetProperty("rejected").EnumerateObject().Sum(p => p.Value.GetInt64());
        Assert.Equal(Problems * K, rows.Count + rejected);
        long passed = stats.GetProperty("passed").GetInt64();
        Assert.Equal(passed, Problems * K - stats.GetProperty("rejected").GetProperty("wrong").GetInt64()
            - stats.GetProperty("rejected").GetProperty("too_long").GetInt64() - stats.GetProperty("rejected").GetProperty("too_short").GetInt64()
            - stats.GetProperty("rejected").GetProperty("missing_answer").GetInt64());
        Assert.Equal((double)passed / (Problems * K), stats.GetProperty("pass_rate").GetDouble(), 12);
        Assert.Equal(rows.Select(r => (int)r["problem_index"]!).Distinct().Count(), stats.GetProperty("problems_kept").GetInt64());
        Assert.True(passed > 0 && passed < Problems * K, $"the regex reward should pass some samples and fail others: {passed}");

        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "state.json"))).RootElement;
        Assert.Equal([0, 4, 8], state.GetProperty("shards").EnumerateArray().Select(s => s.GetProperty("first_problem").GetInt32()));
        var metrics = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([4L, 8L, 10L], metrics.Select(m => m.GetProperty("step").GetInt64()));
        Assert.Contains("solve rate (pass@3)", log);
        Assert.Contains("problems 10/10", log);
    }

    [Fact]
    public async Task A_run_stopped_after_its_first_shard_resumes_and_ends_with_the_uninterrupted_dataset()
    {
        using var tmp = Setup();
        await Run(tmp, "full");

        using var stop = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            Run(tmp, "resumed", stop.Token, r => r.ShardWritten += _ => stop.Cancel()));
        var firstShard = Path.Combine(tmp["resumed"], "data", "shard-00000.parquet");
        var written = File.GetLastWriteTimeUtc(firstShard);
        Assert.False(File.Exists(Path.Combine(tmp["resumed"], "data", "shard-00001.parquet")));

        var (resumed, log) = await Run(tmp, "resumed");
        Assert.Contains("resuming: 1 shards done (4 problems", log);
        Assert.Equal(Problems - PerShard, resumed.ProblemsGenerated);      // finished problems are not generated again
        Assert.Equal(written, File.GetLastWriteTimeUtc(firstShard));        // nor is their shard rewritten
        Assert.Equal(Rows(tmp["full"]), Rows(tmp["resumed"]));
        var (a, b) = (Stats(tmp["full"]), Stats(tmp["resumed"]));
        foreach (var key in new[] { "problems", "samples", "passed", "kept", "pass_rate", "solve_rate", "completion_tokens" })
            Assert.Equal(a.GetProperty(key).GetRawText(), b.GetProperty(key).GetRawText());
        Assert.Equal(a.GetProperty("rejected").GetRawText(), b.GetProperty("rejected").GetRawText());

        // a finished run has nothing left to do
        var (again, _) = await Run(tmp, "resumed");
        Assert.Equal(0, again.ProblemsGenerated);
        // other sampling settings would mix two datasets: refused, naming the section
        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(tmp, "resumed", overrides: "sampling.temperature=0.5"));
        Assert.Contains("'sampling' differs", e.Message);
    }

    [Fact]
    public async Task The_sft_recipe_trains_on_the_shard_directory()
    {
        using var tmp = Setup();
        await Run(tmp, "distill");
        var data = Path.Combine(tmp["distill"], "data");
        var kept = Rows(tmp["distill"]).Count;
        Assert.Equal(kept, Dataset.Chat(data).Count());
        Assert.Equal(kept, Dataset.PromptCompletion(Path.Combine(data, "shard-*.parquet")).Count());

        File.WriteAllText(tmp["sft.yaml"], $"""
            recipe: sft
            output_dir: {tmp["sft"]}
            seed: 3
            max_steps: 2
            model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
            data: {"{"} path: {data}, format: messages, max_seq_len: 64, batch_size: 2, packed: true {"}"}
            optimizer: {"{"} lr: 1.0e-3 {"}"}
            scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
            checkpoint: {"{"} every_n_steps: 0, resume: false {"}"}
            logging: {"{"} tensorboard: false, progress: plain {"}"}
            """);
        Assert.Equal(0, await RecipeRunner.RunAsync(tmp["sft.yaml"], [], new StringWriter(), CancellationToken.None));
        var losses = File.ReadAllLines(Path.Combine(tmp["sft"], "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(m => m.TryGetProperty("loss", out _)).Select(m => m.GetProperty("loss").GetDouble()).ToList();
        Assert.Equal(2, losses.Count);
        Assert.All(losses, l => Assert.True(double.IsFinite(l) && l > 0, $"{l}"));
    }

    [Fact]
    public async Task Config_errors_name_the_key()
    {
        using var tmp = Setup();
        File.WriteAllText(tmp["x.yaml"], Yaml(tmp, "x"));
        DistillConfig Bind(params string[] o) => (DistillConfig)RecipeRunner.Resolve(tmp["x.yaml"], o).Config;
        async Task<string> Error(params string[] o) =>
            (await Assert.ThrowsAsync<RecipeConfigException>(() => new DistillRecipe(Bind(o)).RunAsync(new RecipeContext("x", "", new StringWriter()), default))).Message;

        Assert.Equal(TeacherKind.OpenAi, Bind("teacher.kind=openai").Teacher.Kind);
        Assert.Contains("teacher.base_url: missing", await Error("teacher.kind=openai"));
        Assert.Contains("sampling.samples_per_problem: must be >= 1", await Error("sampling.samples_per_problem=0"));
        Assert.Contains("filters.min_pass_rate", await Error("filters.min_pass_rate=0.9", "filters.max_pass_rate=0.5"));
        Assert.Contains("sampling.prompt_template", await Error("sampling.prompt_template=nothing"));
        Assert.Contains("data.path: ", await Error($"data.path={tmp["missing.jsonl"]}"));
    }
}
