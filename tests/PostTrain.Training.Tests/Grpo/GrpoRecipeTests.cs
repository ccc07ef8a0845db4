// The grpo recipe end to end on the CPU in seconds: a random-init Micro model with the byte tokenizer learns to write
// lowercase letters (reward = share of lowercase letters in the completion, a JS plugin), deterministically; a
// reward that always throws does not stop training; a run stopped and resumed matches an uninterrupted one exactly;
// the run directory holds metrics, samples, checkpoints and the final model.
using System.Text.Json;
using PostTrain.Training.Grpo;
using PostTrain.Training.Recipes;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;

namespace PostTrain.Training.Tests.Grpo;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class GrpoRecipeTests
{
    internal const string LowercasePlugin = """
        // share of lowercase ASCII letters in the completion
        function reward(sample, options) {
          var s = sample.completion;
          if (s.length === 0) return 0;
          var n = 0;
          for (var i = 0; i < s.length; i++) { var c = s.charAt(i); if (c >= "a" && c <= "z") n++; }
          return n / s.length;
        }
        """;

    private const string ThrowingPlugin = """
        // always fails
        function reward(sample, options) { throw new Error("boom"); }
        """;

    private static string Yaml(TempDir tmp, long maxSteps, string extraRewards = "") => $"""
        recipe: grpo
        output_dir: {tmp["run"]}
        seed: 5
        max_steps: {maxSteps}
        clip_grad_norm: 1.0
        model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
        data: {"{"} path: {tmp["prompts.jsonl"]}, chat_template: plain, shuffle: true {"}"}
        rewards_dir: {tmp["rewards"]}
        rewards:
          - {"{"} name: lowercase, weight: 1.0 {"}"}
        {extraRewards}
        grpo:
          prompts_per_step: 2
          num_generations: 8
          micro_batch_size: 16
          max_completion_length: 6
          mu: 1
        samples_every_n_steps: 5
        optimizer: {"{"} lr: 0.02, weight_decay: 0.0, betas: [0.9, 0.99] {"}"}
        scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
        checkpoint: {"{"} every_n_steps: 5, keep_last: 2, resume: true {"}"}
        logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
        """;

    private static TempDir Setup()
    {
        var tmp = new TempDir();
        Directory.CreateDirectory(tmp["rewards"]);
        File.WriteAllText(tmp["rewards/lowercase.js"], LowercasePlugin);
        File.WriteAllText(tmp["rewards/boom.js"], ThrowingPlugin);
        File.WriteAllLines(tmp["prompts.jsonl"], Enumerable.Range(0, 8).Select(i => $"{{\"prompt\": \"Q{i}:\"}}"));
        return tmp;
    }

    private static async Task<(int Code, string Log)> Run(TempDir tmp, string yaml, params string[] overrides)
    {
        File.WriteAllText(tmp["grpo.yaml"], yaml);
        var log = new StringWriter();
        int code = await RecipeRunner.RunAsync(tmp["grpo.yaml"], overrides, log, CancellationToken.None);
        return (code, log.ToString());
    }

    private static List<JsonElement> Metrics(string runDir) =>
        File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public async Task Micro_model_learns_to_write_lowercase_letters()
    {
        using var tmp = Setup();
        var (code, log) = await Run(tmp, Yaml(tmp, 15));
        Assert.Equal(0, code);
        var metrics = Metrics(tmp["run"]);
        var rewards = metrics.Select(m => m.GetProperty("reward/mean").GetDouble()).ToList();
        string Avg(string key) => metrics.Average(m => m.GetProperty(key).GetDouble()).ToString("F3");
        Console.WriteLine($"GRPO learning test: seconds per step: generation {Avg("time/generation_s")}, reward {Avg("time/reward_s")}, train {Avg("time/train_s")}");
        double initial = rewards.Take(3).Average(), final = rewards.TakeLast(3).Average();
        Console.WriteLine($"GRPO learning test: reward/mean first 3 steps {initial:F3}, last 3 steps {final:F3}; all: {string.Join(" ", rewards.Select(r => r.ToString("F2")))}");
        Assert.True(final > initial + 0.3, $"mean reward {initial:F3} -> {final:F3}\n{log}");
    }

    [Theory]
    [InlineData("tis")]
    [InlineData("mis")]
    public async Task In_fp32_on_the_cpu_rollout_log_probs_equal_the_trainers_so_corrections_weigh_one(string mode)
    {
        using var tmp = Setup();
        var (code, log) = await Run(tmp, Yaml(tmp, 2), $"grpo.rollout_correction={mode}", "grpo.rollout_correction_level=token");
        Assert.Equal(0, code);
        foreach (var m in Metrics(tmp["run"]))
        {
            Assert.True(m.GetProperty("mismatch/logprob_abs_max").GetDouble() < 1e-5, log);
            Assert.True(m.GetProperty("mismatch/logprob_abs_mean").GetDouble() < 1e-6);
            Assert.True(Math.Abs(m.GetProperty("mismatch/k3_kl").GetDouble()) < 1e-9);
            Assert.Equal(0, m.GetProperty("mismatch/frac_abs_over_0.1").GetDouble());
            Assert.Equal(1.0, m.GetProperty("mismatch/is_weight_mean").GetDouble(), 5);
            Assert.Equal(0, m.GetProperty("mismatch/masked_fraction").GetDouble());
            Assert.Equal(0, m.GetProperty("mismatch/routing_disagreement").GetDouble());
        }
    }

    [Fact]
    public async Task Routing_replay_runs_and_in_fp32_rollout_and_training_routes_agree()
    {
        using var tmp = Setup();
        var (code, log) = await Run(tmp, Yaml(tmp, 3), "grpo.routing_replay=true", "grpo.rollout_correction=tis");
        Assert.Equal(0, code);
        var metrics = Metrics(tmp["run"]);
        Assert.Equal(3, metrics.Count);
        foreach (var m in metrics)
        {
            Assert.Equal(0, m.GetProperty("mismatch/routing_disagreement").GetDouble());
            Assert.True(m.GetProperty("mismatch/logprob_abs_max").GetDouble() < 1e-5, log);
            Assert.True(double.IsFinite(m.GetProperty("loss").GetDouble()));
        }
    }

    private const string BoomReward = "  - { name: boom, weight: 1.0 }";

    // every variant switch on at once: KL to a reference, mu = 2, dynamic sampling, clip-higher, DAPO token mean
    private static readonly string[] Variants =
    [
        "grpo.beta=0.05", "grpo.mu=2", "grpo.dynamic_sampling=true", "grpo.max_sampling_rounds=2", "grpo.epsilon_high=0.28",
        "grpo.loss_aggregation=dapo", "checkpoint.every_n_steps=2", "samples_every_n_steps=2",
    ];

    [Fact]
    public async Task Stopped_and_resumed_run_matches_an_uninterrupted_one_and_a_failing_reward_never_stops_training()
    {
        using var a = Setup();
        using var b = Setup();
        Assert.Equal(0, (await Run(a, Yaml(a, 4, BoomReward), Variants)).Code);
        Assert.Equal(0, (await Run(b, Yaml(b, 2, BoomReward), Variants)).Code);
        var (code, log) = await Run(b, Yaml(b, 4, BoomReward), [.. Variants, "checkpoint.allow_config_change=true"]);
        Assert.Equal(0, code);
        Assert.Contains("resumed from", log);
        Assert.Contains("(step 2, epoch 0, data position ", log);

        var ma = Metrics(a["run"]);
        var mb = Metrics(b["run"]);
        Assert.Equal([1L, 2, 3, 4], mb.Select(m => m.GetProperty("step").GetInt64()));
        foreach (var key in new[] { "loss", "reward/mean", "kl", "entropy", "grad_norm", "sampling_rounds" })
            Assert.Equal(ma.Select(m => m.GetProperty(key).GetDouble()), mb.Select(m => m.GetProperty(key).GetDouble()));

        // the throwing plugin is counted, the lowercase reward alone makes the total
        foreach (var m in ma)
        {
            Assert.Equal(16, m.GetProperty("rewards/boom/errors").GetDouble());
            Assert.Equal(m.GetProperty("rewards/lowercase/mean").GetDouble(), m.GetProperty("reward/mean").GetDouble(), 9);
        }
        Assert.True(ma[^1].GetProperty("kl").GetDouble() > 0, "KL to the reference is positive once the policy moved");
        // the second of mu = 2 updates sees a policy that moved (lr 0.02): some tokens leave the clip range
        Assert.True(ma.Sum(m => m.GetProperty("clip_ratio/low").GetDouble() + m.GetProperty("clip_ratio/high").GetDouble()) > 0);

        var run = a["run"];
        Assert.True(File.Exists(Path.Combine(run, "final", "config.json")));
        Assert.True(File.Exists(Path.Combine(run, "step-000004", "model", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(run, "step-000004", "optimizer.safetensors")));
        var samples = File.ReadAllLines(Path.Combine(run, "samples", "step-000004.jsonl"));
        Assert.Equal(16, samples.Length);   // 2 groups of 8
        var first = JsonDocument.Parse(samples[0]).RootElement;
        Assert.Equal(4, first.GetProperty("step").GetInt64());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("rewards").GetProperty("boom").ValueKind);
        Assert.StartsWith("Q", first.GetProperty("prompt").GetString());
    }

    [Fact]
    public async Task Bad_settings_are_errors_naming_the_key()
    {
        using var tmp = Setup();
        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(tmp, Yaml(tmp, 2), "grpo.num_generations=1"));
        Assert.Contains("grpo.num_generations: must be >= 2", e.Message);
        e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(tmp, Yaml(tmp, 2), "grpo.loss_aggregation=dapo2"));
        Assert.Contains("did you mean 'dapo'", e.Message);
    }
}
