// rm through the training fast path (fast_path: on, run eagerly on the CPU exactly as it is captured on CUDA: rows
// padded to data.max_seq_len, the Bradley-Terry loss on the device) against the plain step (fast_path: off, rows padded
// to each micro-batch's longest): per-step losses and the final weights over 5 AdamW steps of the micro MoE reward model
// from the same init and data, with one micro-batch per step and with gradient accumulation over two (accumulation
// bodies + one update body); and fast_path: on refused for runs that do not qualify, naming the key.
using System.Text.Json;
using PostTrain.Training.Recipes;
using PostTrain.Training.RewardModeling;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;

namespace PostTrain.Training.Tests.RewardModeling;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class RmFastPathTests
{
    static void WritePairs(string path, int rows, int seed)
    {
        var rng = new Random(seed);
        string Word() => new(Enumerable.Range(0, rng.Next(2, 6)).Select(_ => (char)('a' + rng.Next(26))).ToArray());
        var lines = Enumerable.Range(0, rows).Select(i =>
        {
            // answers of varied length, so the plain step's micro-batches pad to different lengths
            string prompt = $"{Word()} {Word()}", body = string.Join(" ", Enumerable.Range(0, rng.Next(1, 6)).Select(_ => Word()));
            return JsonSerializer.Serialize(new { prompt, chosen = body + "?", rejected = body + " " + Word() + "!", m = rng.NextDouble() });
        });
        File.WriteAllLines(path, lines);
    }

    static RmConfig Config(TempDir tmp, string run, string fastPath, string extra = "") => RecipeDocument.FromText($"""
        recipe: rm
        output_dir: {tmp[run]}
        seed: 7
        max_steps: 5
        fast_path: {fastPath}
        center_rewards_coefficient: 0.01
        moe_bias_gamma: 0
        clip_grad_norm: 0.5
        model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
        data:
          path: {tmp["train.jsonl"]}
          chat_template: plain
          margin_column: m
          max_seq_len: 96
          batch_size: 6
        {extra}
        optimizer: {"{"} lr: 0.003, weight_decay: 0.01 {"}"}
        scheduler: {"{"} name: constant, warmup_steps: 2 {"}"}
        checkpoint: {"{"} every_n_steps: 100, keep_last: 1 {"}"}
        logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
        """, "test.yaml", []).Bind<RmConfig>();

    static async Task<(RmRecipe Recipe, string Log)> Run(RmConfig cfg)
    {
        var recipe = new RmRecipe(cfg);
        var log = new StringWriter();
        Assert.Equal(0, await recipe.RunAsync(new RecipeContext("test.yaml", "", log), CancellationToken.None));
        return (recipe, log.ToString());
    }

    [Theory]
    [InlineData(1, 0.0)]
    [InlineData(2, 0.0)]
    [InlineData(1, 0.05)]   // routing-bias updates: the fast step's padding to max_seq_len is not counted as load
    public async Task FastPathEqualsThePlainStep(int accumulation, double gamma)
    {
        using var tmp = new TempDir();
        WritePairs(tmp["train.jsonl"], 60, 3);
        string extra = $"gradient_accumulation_steps: {accumulation}";
        var (plain, plainLog) = await Run(Config(tmp, "plain", "off", extra) with { MoeBiasGamma = gamma });
        var (fast, fastLog) = await Run(Config(tmp, "fast", "on", extra) with { MoeBiasGamma = gamma });
        Assert.Contains("fast_path: off: the plain training step", plainLog);
        Assert.Contains("fast_path: on: the fast training step (run eagerly: not on CUDA)", fastLog);
        Assert.Contains("fast path: eager (CUDA graphs turned off)", fastLog);
        FastPathCompare.AssertLossesClose(plain.TrainLosses, fast.TrainLosses);
        Assert.True(plain.TrainLosses[^1] < plain.TrainLosses[0], string.Join(", ", plain.TrainLosses));   // it trains
        var w = FastPathCompare.FinalWeightDiff(tmp["plain"], tmp["fast"]);
        FastPathCompare.AssertWeightsClose(w, "final weights differ");
        Console.WriteLine($"rm fast vs plain, 5 steps x {accumulation} micro-batches: relative L2 {w.RelL2:E2}, max {w.MaxAbs:E2}");
    }

    [Fact]
    public async Task AutoTakesThePlainStep()
    {
        using var tmp = new TempDir();
        WritePairs(tmp["train.jsonl"], 20, 3);
        var (_, log) = await Run(Config(tmp, "auto", "auto") with { MaxSteps = 1 });
        Assert.Contains("fast_path: auto: the plain training step (not on CUDA)", log);
    }

    [Theory]
    [InlineData("alpha", "moe_balance_alpha: 0.01")]
    [InlineData("sgd", "optimizer.name: sgd")]
    [InlineData("recompute", "recompute: layer")]
    [InlineData("unfused", "optimizer.fused: false")]
    public async Task FastPathOnRefusesARunThatDoesNotQualifyNamingTheKey(string change, string key)
    {
        using var tmp = new TempDir();
        WritePairs(tmp["train.jsonl"], 20, 3);
        var on = Config(tmp, "run", "on");
        var cfg = change switch
        {
            "alpha" => on with { MoeBalanceAlpha = 0.01 },
            "sgd" => on with { Optimizer = on.Optimizer with { Name = OptimizerKind.Sgd } },
            "recompute" => on with { Recompute = PostTrain.Core.Recompute.RecomputeMode.Layer },
            _ => on with { Optimizer = on.Optimizer with { Fused = FusedOptimizer.False } },
        };
        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(cfg));
        Assert.StartsWith("fast_path: on, but this run does not qualify: " + key, e.Message);
    }
}
