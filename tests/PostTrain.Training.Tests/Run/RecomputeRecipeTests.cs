// `recompute:` through the recipes on the CPU (micro MoE, fp32): sft (MTP loss and balance loss on, packed rows), sft
// with LoRA adapters (dropout on), rm and grpo trained with selective or layer recompute give the same per-step losses
// as the same run without it (to 1e-5 relative: a few Adam steps carry fp32 rounding); the run says which recompute it
// uses; bench-train measures none/selective/layer from the same init (same losses); an unknown value, a recipe without
// a decoder and fast_path: on with layer recompute (not yet run captured on a GPU) are errors naming the key; fast_path:
// on with selective recompute (measured captured on the H200) trains the fast step with the losses of the fast step
// without recompute.
using System.Text.Json;
using PostTrain.Core.Model;
using PostTrain.Training.Recipes;
using PostTrain.Training.RewardModeling;
using PostTrain.Training.Sft;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;

namespace PostTrain.Training.Tests.Run;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class RecomputeRecipeTests
{
    private static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Abs(expected[i]),
                $"{what} step {i + 1}: loss {actual[i]:R}, without recompute {expected[i]:R}");
    }

    private static string Sft(string outDir, string recompute, string model, string extra = "") => $"""
        recipe: sft
        output_dir: {outDir}
        seed: 7
        max_steps: 4
        mtp_lambda: 0.3
        moe_balance_alpha: 0.01
        fast_path: off
        recompute: {recompute}
        model: {"{"} path: {model}, dtype: float32, device: cpu {"}"}
        data:
          path: {RepoPaths.Of("datasets/arithmetic/train.parquet")}
          max_seq_len: 96
          batch_size: 4
          packed: true
        {extra}
        optimizer: {"{"} lr: 0.003, weight_decay: 0.01 {"}"}
        scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
        checkpoint: {"{"} enabled: false {"}"}
        logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
        """;

    private static async Task<(List<double> Losses, string Log)> RunSft(string yaml)
    {
        var recipe = new SftRecipe(RecipeDocument.FromText(yaml, "recompute.yaml", []).Bind<SftConfig>());
        var log = new StringWriter();
        Assert.Equal(0, await recipe.RunAsync(new RecipeContext("recompute.yaml", "", log), CancellationToken.None));
        return (recipe.TrainLosses, log.ToString());
    }

    [Fact]
    public async Task Sft_with_recompute_gives_the_losses_of_sft_without()
    {
        using var tmp = new TempDir();
        var (plain, plainLog) = await RunSft(Sft(tmp["none"], "none", "micro-moe"));
        Assert.DoesNotContain("recompute:", plainLog);
        foreach (var mode in new[] { "selective", "layer" })
        {
            var (losses, log) = await RunSft(Sft(tmp[mode], mode, "micro-moe"));
            Assert.Contains($"recompute: {mode}: ", log);
            AssertClose(plain, losses, $"sft {mode}");
        }
    }

    [Fact]
    public async Task Lora_sft_with_dropout_and_layer_recompute_gives_the_losses_without()
    {
        using var tmp = new TempDir();
        using (var m = new DeepSeekForCausalLM(BuiltinModels.Micro()))
        {
            m.InitWeights(0.02, 1);
            PretrainedModel.Save(m, tmp["base"]);
        }
        const string lora = "lora: { rank: 4, alpha: 8, dropout: 0.2, target_modules: [q_a_proj, q_b_proj, kv_b_proj, o_proj, gate_proj, up_proj, down_proj], routed_experts: true }";
        var (plain, _) = await RunSft(Sft(tmp["none"], "none", tmp["base"], lora));
        var (layer, log) = await RunSft(Sft(tmp["layer"], "layer", tmp["base"], lora));
        Assert.Contains("recompute: layer: ", log);
        AssertClose(plain, layer, "lora sft layer");
    }

    [Fact]
    public async Task Rm_and_grpo_with_recompute_give_the_losses_without()
    {
        using var tmp = new TempDir();
        File.WriteAllLines(tmp["pairs.jsonl"], Enumerable.Range(0, 32).Select(i =>
            JsonSerializer.Serialize(new { prompt = $"q{i} {i * 7 % 13}", chosen = $"yes {i}?", rejected = $"no {i % 5}!" })));
        string Rm(string mode) => $"""
            recipe: rm
            output_dir: {tmp["rm-" + mode]}
            seed: 7
            max_steps: 3
            recompute: {mode}
            model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
            data: {"{"} path: {tmp["pairs.jsonl"]}, chat_template: plain, max_seq_len: 48, batch_size: 8 {"}"}
            optimizer: {"{"} lr: 0.003, weight_decay: 0.0 {"}"}
            scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
            checkpoint: {"{"} enabled: false {"}"}
            logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
            """;
        async Task<List<double>> RunRm(string mode)
        {
            var recipe = new RmRecipe(RecipeDocument.FromText(Rm(mode), "rm.yaml", []).Bind<RmConfig>());
            Assert.Equal(0, await recipe.RunAsync(new RecipeContext("rm.yaml", "", TextWriter.Null), CancellationToken.None));
            return recipe.TrainLosses;
        }
        var rmPlain = await RunRm("none");
        AssertClose(rmPlain, await RunRm("layer"), "rm layer");
        AssertClose(rmPlain, await RunRm("selective"), "rm selective");

        Directory.CreateDirectory(tmp["rewards"]);
        File.WriteAllText(tmp["rewards/lowercase.js"], PostTrain.Training.Tests.Grpo.GrpoRecipeTests.LowercasePlugin);
        File.WriteAllLines(tmp["prompts.jsonl"], Enumerable.Range(0, 8).Select(i => $"{{\"prompt\": \"Q{i}:\"}}"));
        File.WriteAllText(tmp["grpo.yaml"], $"""
            recipe: grpo
            output_dir: {tmp["grpo"]}
            seed: 5
            max_steps: 2
            model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
            data: {"{"} path: {tmp["prompts.jsonl"]}, chat_template: plain, shuffle: true {"}"}
            rewards_dir: {tmp["rewards"]}
            rewards:
              - {"{"} name: lowercase, weight: 1.0 {"}"}
            grpo: {"{"} prompts_per_step: 2, num_generations: 8, micro_batch_size: 16, max_completion_length: 6, mu: 2 {"}"}
            optimizer: {"{"} lr: 0.02, weight_decay: 0.0 {"}"}
            scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
            checkpoint: {"{"} enabled: false {"}"}
            logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
            """);
        async Task<List<double>> RunGrpo(string mode)
        {
            var log = new StringWriter();
            Assert.Equal(0, await RecipeRunner.RunAsync(tmp["grpo.yaml"], [$"recompute={mode}", $"output_dir={tmp["grpo-" + mode]}"], log, CancellationToken.None));
            if (mode != "none") Assert.Contains($"recompute: {mode}: ", log.ToString());
            return File.ReadAllLines(tmp[$"grpo-{mode}/metrics.jsonl"]).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        }
        var grpoPlain = await RunGrpo("none");
        Assert.Equal(2, grpoPlain.Count);
        AssertClose(grpoPlain, await RunGrpo("layer"), "grpo layer");
    }

    [Fact]
    public async Task Bench_train_measures_each_recompute_mode_from_the_same_init()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await PostTrain.Cli.CliApp.RunAsync(["bench-train", "--model", "micro-moe", "--device", "cpu", "--dtype", "float32",
            "--batch", "2", "--seq", "32", "--steps", "2", "--warmup", "1", "--recompute", "none,selective,layer"], o, e);
        Assert.True(code == 0, e.ToString());
        var rows = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["none", "selective", "layer"], rows.Select(r => r.GetProperty("recompute").GetString()));
        var losses = rows.Select(r => r.GetProperty("losses").EnumerateArray().Select(x => x.GetDouble()).ToList()).ToList();
        Assert.Equal(3, losses[0].Count);
        AssertClose(losses[0], losses[1], "bench-train selective");
        AssertClose(losses[0], losses[2], "bench-train layer");
        Assert.All(rows, r => Assert.True(r.GetProperty("host_peak_gib").GetDouble() > 0));
        Assert.Contains("| layer |", e.ToString());
        Assert.Equal(2, await PostTrain.Cli.CliApp.RunAsync(["bench-train", "--model", "micro-moe", "--device", "cpu", "--recompute", "norms"], o, e));
        Assert.Contains("--recompute: 'norms'", e.ToString());
    }

    [Fact]
    public async Task An_unknown_value_and_a_recipe_without_a_decoder_are_errors_naming_the_key()
    {
        using var tmp = new TempDir();
        var bad = Assert.Throws<RecipeConfigException>(() => RecipeDocument.FromText(Sft(tmp["x"], "everything", "micro-moe"), "bad.yaml", []).Bind<SftConfig>());
        Assert.Contains("recompute", bad.Message);
        var toy = await Assert.ThrowsAsync<RecipeConfigException>(() => RecipeRunner.RunAsync("toy_regression",
            [$"output_dir={tmp["toy"]}", "recompute=layer", "logging.progress=plain", "logging.tensorboard=false"], TextWriter.Null, CancellationToken.None));
        Assert.Contains("recompute: layer, but recipe toy_regression trains no decoder model", toy.Message);
        var fast = await Assert.ThrowsAsync<RecipeConfigException>(() => RunSft(Sft(tmp["fast"], "layer", "micro-moe").Replace("fast_path: off", "fast_path: on")
            .Replace("mtp_lambda: 0.3", "mtp_lambda: 0")));
        Assert.StartsWith("fast_path: on, but this run does not qualify: recompute: layer", fast.Message);
    }

    [Fact]
    public async Task Fast_path_on_with_selective_recompute_trains_the_fast_step_with_its_losses_without()
    {
        using var tmp = new TempDir();
        string Fast(string dir, string mode) => Sft(tmp[dir], mode, "micro-moe").Replace("fast_path: off", "fast_path: on")
            .Replace("mtp_lambda: 0.3", "mtp_lambda: 0");
        var (none, noneLog) = await RunSft(Fast("fast-none", "none"));
        var (selective, log) = await RunSft(Fast("fast-selective", "selective"));
        foreach (var l in new[] { noneLog, log })
            Assert.Contains("fast_path: on: the fast training step (run eagerly: not on CUDA)", l);
        Assert.Contains("recompute: selective: ", log);
        Assert.Equal(4, none.Count);
        AssertClose(none, selective, "fast sft selective");
    }
}
