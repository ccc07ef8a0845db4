// The shipped grpo-*.yaml recipes: their header is the command that runs them, they bind to GrpoConfig, and
// grpo-arith runs end to end (shrunk: built-in micro model, one step) printing held-out accuracy before and after, and
// grpo-code runs two shrunk steps with the sandboxed code reward scoring every completion as its row finishes.
using PostTrain.Training.Grpo;
using PostTrain.Training.Recipes;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;

namespace PostTrain.Training.Tests.Grpo;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class GrpoShippedRecipeTests
{
    static string Repo(string rel) => RepoPaths.Of(rel);

    [Theory]
    [InlineData("grpo-arith.yaml", "math", "runs/sft-quickstart/final")]
    [InlineData("grpo-countdown.yaml", "countdown", "runs/pipeline-countdown/sft/final")]
    [InlineData("grpo-code.yaml", "code", "runs/pipeline-code/sft/final")]
    public void Recipe_header_and_binding(string file, string reward, string model)
    {
        var path = Repo("recipes/" + file);
        Assert.Equal($"posttrain run recipes/{file}", RecipeFiles.HeaderCommand(File.ReadAllText(path)));
        var (info, config, _) = RecipeRunner.Resolve(path, []);
        Assert.Equal("grpo", info.Name);
        var c = Assert.IsType<GrpoConfig>(config);
        Assert.Equal(model, c.Model.Path);
        Assert.Equal(reward, c.Rewards[0].Name);
        Assert.Equal(reward, c.Eval!.Rewards[0].Name);
        Assert.Equal(LossAggregation.TokenMean, c.Grpo.LossAggregation);
        Assert.Equal(0.28, c.Grpo.EpsilonHigh);
    }

    [Fact]
    public async Task Arith_recipe_runs_and_prints_held_out_accuracy_before_and_after()
    {
        using var tmp = new TempDir();
        var (code, text) = await RunShrunk("grpo-arith.yaml", tmp, "arithmetic", "max_steps=1", "eval.rows=4", "eval.samples=2");
        Assert.Equal(0, code);
        Assert.Matches(@"held-out math \(greedy, 4 rows of .*test\.parquet\) before training: 0\.000", text);
        Assert.Matches(@"held-out math \(greedy, 4 rows of .*test\.parquet\) after training: \d\.\d{3}; sampled \(T=1, 2 per prompt\): \d\.\d{3}", text);
        Assert.Contains("rewards/arith_steps/mean", File.ReadAllText(Path.Combine(tmp["run"], "metrics.jsonl")));   // the plugin scored
        Assert.True(File.Exists(Path.Combine(tmp["run"], "final", "model.safetensors")));
    }

    [Fact]
    public async Task Code_recipe_runs_with_streamed_sandbox_scoring()
    {
        using var tmp = new TempDir();
        var (code, log) = await RunShrunk("grpo-code.yaml", tmp, "code", "max_steps=2", "eval.rows=2", "eval.samples=1",
            "grpo.dynamic_sampling=false", "checkpoint.every_n_steps=0");
        Assert.True(code == 0, log);
        var metrics = File.ReadAllLines(Path.Combine(tmp["run"], "metrics.jsonl"));
        var last = System.Text.Json.JsonDocument.Parse(metrics.Last(l => l.Contains("\"rewards/code/mean\""))).RootElement;
        // An untrained micro model writes no code block: the code reward scores 0 (applicable, not an error), the
        // length shaping 0 (8 tokens is far below 384 - 64), so the total is 0.
        Assert.Equal(0.0, last.GetProperty("rewards/code/mean").GetDouble());
        Assert.Equal(0.0, last.GetProperty("rewards/code/errors").GetDouble());
        Assert.Equal(0.0, last.GetProperty("rewards/length/mean").GetDouble());
        Assert.InRange(last.GetProperty("rewards/scored_during_generation").GetDouble(), 0.0, 1.0);
        Assert.Matches(@"held-out code \(greedy, 2 rows of .*test\.parquet\) after training: 0\.000", log);
    }

    /// <summary>A shipped GRPO recipe shrunk to the built-in micro model on the CPU: 2 prompts x 2 samples of 8 tokens,
    /// one sampling round, the given dataset folder's train/test split; returns the exit code and the log.</summary>
    private static async Task<(int, string)> RunShrunk(string recipe, TempDir tmp, string dataset, params string[] extra)
    {
        var log = new StringWriter();
        int code = await RecipeRunner.RunAsync(Repo("recipes/" + recipe),
        [
            $"output_dir={tmp["run"]}", "model.path=micro-moe", "model.device=cpu",
            $"data.path={Repo($"datasets/{dataset}/train.parquet")}", $"eval.path={Repo($"datasets/{dataset}/test.parquet")}",
            "eval.max_new_tokens=8", "grpo.prompts_per_step=2", "grpo.num_generations=2",
            "grpo.max_completion_length=8", "grpo.max_sampling_rounds=1", "scheduler.warmup_steps=0",
            "logging.tensorboard=false", "logging.progress=plain", $"rewards_dir={Repo("rewards")}", .. extra,
        ], log, CancellationToken.None);
        return (code, log.ToString());
    }
}
