// The toy_regression recipe end to end through RecipeRunner: it learns, writes metrics, TensorBoard,
// checkpoints and resolved_config.yaml, and a run stopped and resumed matches an uninterrupted one exactly.
using System.Text.Json;
using PostTrain.Training.Recipes;
using PostTrain.Training.Tests.Infra;

namespace PostTrain.Training.Tests.Recipes;

[Collection(PostTrain.Training.Tests.Recipes.TorchGlobalRngCollection.Name)]
public sealed class ToyRegressionRecipeTests
{
    private static async Task<(int Code, string Log)> Run(string outputDir, params string[] overrides)
    {
        var log = new StringWriter();
        int code = await RecipeRunner.RunAsync("toy_regression",
            [$"output_dir={outputDir}", "logging.progress=plain", "logging.tensorboard=false", .. overrides], log, CancellationToken.None);
        return (code, log.ToString());
    }

    private static List<JsonElement> Metrics(string dir) =>
        File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public async Task Trains_and_writes_run_directory()
    {
        using var tmp = new TempDir();
        var (code, log) = await Run(tmp.Path, "max_steps=120", "checkpoint.every_n_steps=50", "logging.tensorboard=true");
        Assert.Equal(0, code);
        Assert.Contains("recipe: toy_regression", log);            // resolved config printed first
        Assert.Contains("step 120/120 (100.0%)", log);
        Assert.Equal(["latest", "metrics.jsonl", "resolved_config.yaml", "step-000100", "step-000120", "tensorboard"],
            Directory.EnumerateFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order());
        Assert.Equal(["model", "optimizer.safetensors", "resolved_config.yaml", "trainer_state.json"],
            Directory.EnumerateFileSystemEntries(tmp["step-000120"]).Select(Path.GetFileName).Order());
        Assert.True(File.Exists(tmp["step-000120/model/model.bin"]));
        var resolved = File.ReadAllText(tmp["resolved_config.yaml"]);
        Assert.Contains("max_steps: 120\n", resolved);
        Assert.Equal(120, RecipeDocument.FromText(resolved, "resolved").Bind<ToyRegressionConfig>().MaxSteps);

        var m = Metrics(tmp.Path);
        Assert.Equal(Enumerable.Range(1, 120).Select(i => (long)i), m.Select(e => e.GetProperty("step").GetInt64()));
        double first = m[0].GetProperty("loss").GetDouble(), last = m[^1].GetProperty("loss").GetDouble();
        Assert.True(last < first / 20 && last < 0.05, $"loss {first} -> {last}");
        Assert.Equal(0.05 / 20, m[0].GetProperty("lr").GetDouble(), 12); // warmup step 0: peak * 1/20
        Assert.Single(Directory.GetFiles(tmp["tensorboard"]));
    }

    [Fact]
    public async Task Gradient_accumulation_of_two_half_batches_equals_one_full_batch()
    {
        // mean-squared error is a mean over the batch, so two halves of 16 averaged give the gradient of the 32
        // (same samples in the same order; input noise differs only in draw order, so it is turned off)
        using var a = new TempDir();
        using var b = new TempDir();
        string[] common = ["max_steps=8", "scheduler.warmup_steps=2", "input_noise=0", "clip_grad_norm=null"];
        Assert.Equal(0, (await Run(a.Path, [.. common, "batch_size=32"])).Code);
        Assert.Equal(0, (await Run(b.Path, [.. common, "batch_size=16", "gradient_accumulation_steps=2"])).Code);
        var la = Metrics(a.Path).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        var lb = Metrics(b.Path).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        for (int i = 0; i < la.Count; i++) Assert.Equal(la[i], lb[i], 5);
        Assert.Equal(256, Checkpoints(b.Path).State.DataPosition);
    }

    private static Training.Infra.CheckpointInfo Checkpoints(string dir) => new Training.Infra.CheckpointManager(dir, 3).FindLatest()!;

    [Fact]
    public async Task Stopped_and_resumed_run_matches_an_uninterrupted_one()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        // constant schedule, so max_steps does not change the LR curve; 40 steps of 32 cross an epoch (512 samples).
        // Extending max_steps is a config change, so the resume has to ask for it (checkpoint.allow_config_change).
        string[] common = ["scheduler.name=constant", "checkpoint.every_n_steps=10"];
        Assert.Equal(0, (await Run(a.Path, [.. common, "max_steps=40"])).Code);
        Assert.Equal(0, (await Run(b.Path, [.. common, "max_steps=25"])).Code);  // saves 10, 20 and 25
        var (code, log) = await Run(b.Path, [.. common, "max_steps=40", "checkpoint.allow_config_change=true"]);
        Assert.Equal(0, code);
        Assert.Contains("resumed from", log);
        Assert.Contains("step-000025 (step 25, epoch 1, data position 288)", log);

        var ma = Metrics(a.Path).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        var mb = Metrics(b.Path).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.Equal(40, mb.Count);
        Assert.Equal(ma, mb);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a.Path, "step-000040", "model", "model.bin")), File.ReadAllBytes(Path.Combine(b.Path, "step-000040", "model", "model.bin")));
    }
}
