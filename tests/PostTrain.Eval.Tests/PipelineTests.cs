// The pipeline recipe on two quick toy_regression stages (seconds on CPU): stages land in <output_dir>/<name> with a
// done marker; a second run skips them without touching their files; changing a stage's key reruns it and every later
// stage (the old folder moved aside, not deleted) while earlier ones stay skipped; an interrupted stage is resumed in
// place; ${name} references resolve to earlier stages' folders and bad references name the key; the summary and an
// eval's results.json feed pipeline.md.
using System.Text.Json;
using PostTrain.Pipeline;
using PostTrain.Eval.Recipe;
using PostTrain.Training.Recipes;

namespace PostTrain.Eval.Tests;

public sealed class PipelineTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"posttrain-pipeline-{Guid.NewGuid():N}");

    public PipelineTests()
    {
        Directory.CreateDirectory(_root);
        RecipeRegistry.Register(PipelineRecipe.Info);
        RecipeRegistry.Register(EvalRecipe.Info);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    /// <summary>The shipped pipelines resolve every stage (recipes, keys, references) without running anything.</summary>
    [Theory]
    [InlineData("pipeline-quickstart.yaml", new[] { "sft", "distill", "sft-distilled", "rm", "grpo", "eval" })]
    [InlineData("pipeline-gpu.yaml", new[] { "sft", "distill", "sft-distilled", "rm", "grpo", "eval" })]
    [InlineData("pipeline-countdown.yaml", new[] { "sft", "grpo", "eval" })]
    [InlineData("pipeline-code.yaml", new[] { "sft", "grpo", "eval" })]
    public void Shipped_pipelines_plan_every_stage(string file, string[] stages)
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "PostTrain.sln"))) dir = Path.GetDirectoryName(dir)!;
        var path = Path.Combine(dir, "recipes", file);
        var (info, config, _) = RecipeRunner.Resolve(path, [$"output_dir={Out}"]);
        var plan = ((PipelineRecipe)info.Create(config)).Plan(path);
        Assert.Equal(stages, plan.Select(s => s.Name));
        Assert.All(plan, s => Assert.Equal(Path.Combine(Out, s.Name), s.Dir));
        if (file == "pipeline-code.yaml") CheckCodePipeline(plan);
        if (file != "pipeline-countdown.yaml") return;
        var sft = (SftConfig)plan[0].Config;
        Assert.Equal("models/tiny-moe-countdown-base", sft.Model.Path);
        Assert.Equal("datasets/countdown/train.parquet", sft.Data.Path);
        Assert.Equal("datasets/countdown/test.parquet", sft.Data.EvalPath);
        var grpo = (PostTrain.Training.Grpo.GrpoConfig)plan[1].Config;
        Assert.Equal(Path.Combine(Out, "sft") + "/final", grpo.Model.Path);
        Assert.Equal("countdown", grpo.Rewards[0].Name);
        Assert.Equal(150L, grpo.MaxSteps);
    }

    /// <summary>pipeline-code: SFT on the generated code tasks, GRPO with the sandboxed code reward, evaluation of the
    /// three models on the held-out code-synth task with 4 samples (pass@1, pass@4).</summary>
    private void CheckCodePipeline(IReadOnlyList<PipelineRecipe.PlannedStage> plan)
    {
        var sft = (SftConfig)plan[0].Config;
        Assert.Equal("models/tiny-moe-code-base", sft.Model.Path);   // the shipped code base, which must exist
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "PostTrain.sln"))) root = Path.GetDirectoryName(root)!;
        Assert.True(File.Exists(Path.Combine(root, sft.Model.Path, "model.safetensors")), sft.Model.Path);
        Assert.Equal("datasets/code/train.parquet", sft.Data.Path);
        Assert.Equal("datasets/code/test.parquet", sft.Data.EvalPath);
        var grpo = (PostTrain.Training.Grpo.GrpoConfig)plan[1].Config;
        Assert.Equal(Path.Combine(Out, "sft") + "/final", grpo.Model.Path);
        Assert.Equal("datasets/code/rl.parquet", grpo.Data.Path);
        Assert.Equal(["code", "regex", "length"], grpo.Rewards.Select(r => r.Name));
        Assert.Equal("datasets/code/test.parquet", grpo.Eval!.Path);
        var eval = (EvalRecipeConfig)plan[2].Config;
        Assert.Equal(["code-synth"], eval.Tasks);
        Assert.Equal(4, eval.Samples);
        Assert.Equal(3, eval.Models.Count);
    }

    private string Out => Path.Combine(_root, "out");

    private string WriteYaml(long stepsA = 12, long stepsB = 15, string extraB = "")
    {
        var path = Path.Combine(_root, "pipeline.yaml");
        File.WriteAllText(path, $"""
            recipe: pipeline
            output_dir: {Out}
            stages:
              - name: first
                recipe: toy_regression
                set:
                  max_steps: {stepsA}
                  checkpoint.every_n_steps: 5
                  scheduler.warmup_steps: 2
                  logging.progress: plain
                  logging.tensorboard: false
              - name: second
                recipe: toy_regression
                set:
                  max_steps: {stepsB}
                  seed: 7
                  scheduler.warmup_steps: 2
                  logging: {"{"}progress: plain, tensorboard: false{"}"}
            {extraB}
            """);
        return path;
    }

    private static async Task<(int Code, string Log)> Run(string path, params string[] overrides)
    {
        var log = new StringWriter();
        int code = await RecipeRunner.RunAsync(path, overrides, log, CancellationToken.None);
        return (code, log.ToString());
    }

    private static StageMarker Marker(string dir) => StageMarker.Read(dir) ?? throw new Xunit.Sdk.XunitException($"no marker in {dir}");

    private static int MetricLines(string dir) => File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Length;

    [Fact]
    public async Task Runs_stages_in_order_then_skips_them_and_reruns_only_what_changed()
    {
        var yaml = WriteYaml();
        var (code, log) = await Run(yaml);
        Assert.True(code == 0, log);
        string first = Path.Combine(Out, "first"), second = Path.Combine(Out, "second");
        Assert.Equal(StageMarker.Done, Marker(first).Status);
        Assert.Equal(StageMarker.Done, Marker(second).Status);
        Assert.Equal(12, MetricLines(first));          // one metrics line per step: the overrides reached the stage
        Assert.Equal(15, MetricLines(second));
        Assert.Contains("seed: 7", File.ReadAllText(Path.Combine(second, RecipeRunner.ResolvedConfigFileName)));
        Assert.True(Marker(first).FinishedUtc <= Marker(second).FinishedUtc);

        // the same pipeline again: nothing runs, nothing is rewritten
        var before = (File.GetLastWriteTimeUtc(Path.Combine(first, "metrics.jsonl")), File.GetLastWriteTimeUtc(Path.Combine(second, "metrics.jsonl")));
        (code, log) = await Run(yaml);
        Assert.Equal(0, code);
        Assert.Equal(2, log.Split('\n').Count(l => l.Contains("; skipped")));
        Assert.Equal(before, (File.GetLastWriteTimeUtc(Path.Combine(first, "metrics.jsonl")), File.GetLastWriteTimeUtc(Path.Combine(second, "metrics.jsonl"))));

        // a changed key in the second stage: the first is skipped, the second moves aside and runs again
        (code, log) = await Run(WriteYaml(stepsB: 9));
        Assert.True(code == 0, log);
        Assert.Contains("stage 1/2: first", log.Split('\n').Single(l => l.Contains("; skipped")));
        Assert.Equal(9, MetricLines(second));
        var stale = Assert.Single(Directory.GetDirectories(Out, "second.stale-*"));
        Assert.Equal(15, MetricLines(stale));           // nothing lost

        // a change upstream reaches every later stage, even though the second stage's own keys did not change
        (code, log) = await Run(WriteYaml(stepsA: 10, stepsB: 9));
        Assert.True(code == 0, log);
        Assert.DoesNotContain("; skipped", log);
        Assert.Equal(10, MetricLines(first));
        Assert.Equal(2, Directory.GetDirectories(Out, "second.stale-*").Length);

        // the summary lists both stages with their times
        var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(Out, PipelineSummary.JsonFileName))).RootElement;
        Assert.Equal(["first", "second"], summary.EnumerateArray().Select(e => e.GetProperty("stage").GetString()));
        Assert.All(summary.EnumerateArray(), e => Assert.Equal("done", e.GetProperty("status").GetString()));
        Assert.Contains("| second | toy_regression | done |", File.ReadAllText(Path.Combine(Out, PipelineSummary.MarkdownFileName)));
    }

    [Fact]
    public async Task An_interrupted_stage_is_resumed_in_place_not_moved_aside()
    {
        var yaml = WriteYaml();
        var (info, config, _) = RecipeRunner.Resolve(yaml, []);
        var plan = ((PipelineRecipe)info.Create(config)).Plan(yaml);
        // stage one finished; stage two got to step 5 (its checkpoint) and was killed: its marker still says running
        var (code, log) = await Run(yaml, "stages=" + """[{name: first, recipe: toy_regression, set: {max_steps: 12, checkpoint.every_n_steps: 5, scheduler.warmup_steps: 2, logging.progress: plain, logging.tensorboard: false}}]""");
        Assert.True(code == 0, log);
        // (the one-stage override above has the same first stage, so its fingerprint matches the two-stage plan's)
        Assert.Equal(plan[0].Fingerprint, Marker(plan[0].Dir).Fingerprint);
        var second = (ToyRegressionConfig)plan[1].Config;
        var partial = second with { MaxSteps = 5 };
        Directory.CreateDirectory(plan[1].Dir);
        StageMarker.Write(plan[1].Dir, new StageMarker("second", "toy_regression", plan[1].Fingerprint, StageMarker.Running, 1.5, DateTime.UtcNow));
        Assert.Equal(0, await new ToyRegressionRecipe(partial).RunAsync(new RecipeContext(yaml, "", TextWriter.Null), CancellationToken.None));
        Assert.Equal("resume", plan[1].State);

        (code, log) = await Run(yaml);
        Assert.True(code == 0, log);
        Assert.Contains("stage 2/2: second (toy_regression", log);
        Assert.Contains("resuming an interrupted run", log);
        Assert.Empty(Directory.GetDirectories(Out, "second.stale-*"));
        Assert.Equal(15, MetricLines(plan[1].Dir));     // steps 1-5 from the first attempt, 6-15 after resuming
        Assert.Contains("resumed", log, StringComparison.OrdinalIgnoreCase);
        Assert.True(Marker(plan[1].Dir).Seconds >= 1.5); // time of the interrupted attempt kept
    }

    [Fact]
    public void References_resolve_to_earlier_stage_folders_and_bad_ones_name_the_key()
    {
        var path = Path.Combine(_root, "refs.yaml");
        File.WriteAllText(path, $$"""
            recipe: pipeline
            output_dir: {{Out}}
            stages:
              - name: base
                recipe: toy_regression
              - name: sft
                recipe: sft
                set:
                  model.path: ${base}/final
                  data.path: ${output_dir}/data.jsonl
                  data.eval_path: "${base}/eval file.jsonl"
              - name: sft2
                recipe: sft
                set:
                  data.eval_path: null
            """);
        var (info, config, _) = RecipeRunner.Resolve(path, []);
        var plan = ((PipelineRecipe)info.Create(config)).Plan(path);
        var sft = (SftConfig)plan[1].Config;
        Assert.Equal(Path.Combine(Out, "base") + "/final", sft.Model.Path);
        Assert.Equal(Out + "/data.jsonl", sft.Data.Path);
        Assert.Equal(Path.Combine(Out, "base") + "/eval file.jsonl", sft.Data.EvalPath);
        Assert.Equal(Path.Combine(Out, "sft"), sft.OutputDir);
        Assert.NotEqual(plan[0].Fingerprint, plan[1].Fingerprint);
        Assert.Null(((SftConfig)plan[2].Config).Data.EvalPath);   // a null override reaches the stage
        Assert.NotNull(sft.Data.EvalPath);

        string Error(string yaml)
        {
            File.WriteAllText(path, $"recipe: pipeline\noutput_dir: {Out}\nstages:\n{yaml}");
            var (i, c, _) = RecipeRunner.Resolve(path, []);
            return Assert.Throws<RecipeConfigException>(() => ((PipelineRecipe)i.Create(c)).Plan(path)).Message;
        }
        var later = Error("  - {name: a, recipe: toy_regression, set: {seed: 1}}\n  - {name: b, recipe: sft, set: {model.path: '${c}/final'}}\n  - {name: c, recipe: toy_regression}\n");
        Assert.Contains("stage 'b': set.model.path: ${c}: stage 'c' runs after this one", later);
        var unknown = Error("  - {name: a, recipe: toy_regression}\n  - {name: b, recipe: sft, set: {model.path: '${sftt}/final'}}\n");
        Assert.Contains("set.model.path: ${sftt}: no earlier stage is named 'sftt' (stages: a", unknown);
        Assert.Contains("'a' is used by an earlier stage too", Error("  - {name: a, recipe: toy_regression}\n  - {name: a, recipe: toy_regression}\n"));
        Assert.Contains("stages[0].set.output_dir", Error("  - {name: a, recipe: toy_regression, set: {output_dir: x}}\n"));
        Assert.Contains("unknown recipe 'toy_regresion'; did you mean 'toy_regression'?", Error("  - {name: a, recipe: toy_regresion}\n"));
        // a bad key inside a stage is reported before anything runs, naming the override
        Assert.Contains("optimizer.lrr", Error("  - {name: a, recipe: toy_regression}\n  - {name: b, recipe: toy_regression, set: {optimizer.lrr: 1}}\n"));
        Assert.False(Directory.Exists(Path.Combine(Out, "a")));
    }

    [Fact]
    public void Eval_results_file_has_stage_to_stage_comparisons_and_feeds_the_summary()
    {
        // three "stages" answering 4 problems: a gets 1 right, b 3, c 2 (greedy)
        bool[][] correct = [[true, false, false, false], [true, true, true, false], [true, true, false, false]];
        string[] models = ["a", "b", "c"];
        var samples = models.SelectMany((m, i) => correct[i].Select((ok, p) => new PostTrain.Eval.Runner.EvalSample
        {
            Model = m, Task = "t", Mode = PostTrain.Eval.Runner.EvalSample.Greedy, Problem = p, Sample = 0, Prompt = "q", Completion = "c",
            Correct = ok, PromptTokens = 1, CompletionTokens = 1, FinishReason = "stop",
        })).ToList();
        var task = new PostTrain.Eval.Tasks.EvalTask("t", "x.jsonl", "math", new Dictionary<string, object?>());
        var problems = Enumerable.Range(0, 4).Select(i => new PostTrain.Eval.Tasks.EvalProblem(i, "q", null, new Dictionary<string, object?>())).ToList();
        var settings = new PostTrain.Eval.Runner.EvalSettings { Samples = 1, BootstrapResamples = 200 };
        var result = PostTrain.Eval.Runner.EvalResult.Compute(models, [(task, problems)], samples, settings);
        var file = EvalResultsFile.From(result, settings);
        Assert.Equal([0.25, 0.75, 0.5], file.Metrics.Select(m => m.Accuracy));
        var pairs = file.Comparisons.Select(c => (c.From, c.To, c.Kind, Math.Round(c.Difference, 6))).ToList();
        Assert.Equal([("a", "b", "vs_first", 0.5), ("a", "c", "vs_first", 0.25), ("b", "c", "vs_previous", -0.25)], pairs);
        // b vs a: 2 discordant problems both for b -> exact McNemar p = 2 * 0.5^2 = 0.5
        Assert.Equal(0.5, file.Comparisons[0].PValue, 9);

        var dir = Path.Combine(_root, "eval");
        Directory.CreateDirectory(dir);
        file.Write(dir);
        var summary = new PipelineSummary(_root);
        summary.Add("eval", "eval", dir, 3, skipped: false);
        var md = summary.Markdown();
        Assert.Contains("b t accuracy: 0.750", md);
        Assert.Contains("| t | b | c | -0.250", md);
    }
}
