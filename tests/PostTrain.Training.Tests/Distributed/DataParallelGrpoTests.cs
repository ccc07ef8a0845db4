// Data-parallel GRPO through the CLI: `posttrain run grpo.yaml` as one process and under mpirun as 2 and 4 ranks, on
// a seeded toy task (a random-init Micro MoE with the byte tokenizer; reward = share of lowercase letters, a JS
// plugin). The global batch is 3 prompts x 4 completions (2 + 1 prompts on 2 ranks; 1 + 1 + 1 + 0 on 4, so one rank
// samples and trains on nothing yet takes part in every exchange and optimizer step), with a frozen reference (KL),
// mu = 2 updates in micro-batches, batch-std advantages, dynamic sampling over 2 rounds, truncated importance sampling
// and a sampled held-out eval before and after. The per-step rewards (and every rollout statistic), the eval means
// and the number of groups trained equal the one-process run exactly; losses, KL and gradient norms agree to fp32
// rounding (relative 1e-4), and the final weights to 3e-4 of each tensor's norm: after 8 AdamW updates at lr 0.02 the
// fp32 noise floor is that size (measured: one process with micro_batch_size 3 instead of 5, the same sums in another
// order, ends 1.2e-4 away on the MTP embedding; 2 ranks ended 4e-5 away on model.embed_tokens). Rank 0 alone reports
// and writes samples. The one-process run is shared by the cases (GrpoBaseline).
using System.Text.Json;
using PostTrain.Training.Tests.Infra;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Distributed;

public sealed class GrpoBaseline : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly Lazy<string> _one;

    public GrpoBaseline()
    {
        Directory.CreateDirectory(_tmp["rewards"]);
        File.WriteAllText(_tmp["rewards/lowercase.js"], Grpo.GrpoRecipeTests.LowercasePlugin);
        File.WriteAllLines(_tmp["prompts.jsonl"], Enumerable.Range(0, 8).Select(i => $"{{\"prompt\": \"Q{i}:\"}}"));
        File.WriteAllText(_tmp["grpo.yaml"], $$"""
            recipe: grpo
            seed: 11
            clip_grad_norm: 1.0
            model: { path: micro-moe, dtype: float32, device: cpu }
            data: { path: {{_tmp["prompts.jsonl"]}}, chat_template: plain, shuffle: true }
            rewards_dir: {{_tmp["rewards"]}}
            rewards:
              - { name: lowercase, weight: 1.0 }
            grpo:
              prompts_per_step: 3
              num_generations: 4
              micro_batch_size: 5
              max_completion_length: 6
              mu: 2
              beta: 0.05
              advantage_scaling: batch
              dynamic_sampling: true
              max_sampling_rounds: 2
              rollout_correction: tis
            eval: { path: {{_tmp["prompts.jsonl"]}}, rows: 5, samples: 2, max_new_tokens: 6, rewards: [{ name: lowercase }] }
            samples_every_n_steps: 2
            samples_groups: 3
            optimizer: { lr: 0.02, weight_decay: 0.0, betas: [0.9, 0.99] }
            scheduler: { name: constant, warmup_steps: 0 }
            checkpoint: { every_n_steps: 0 }
            logging: { tensorboard: false, progress: plain, plain_interval_seconds: 1000 }
            """);
        _one = new(() =>
        {
            var (rc, output) = Cli(1, _tmp["one"]);
            Assert.True(rc == 0, output);
            return _tmp["one"];
        });
    }

    /// <summary>The one-process run's directory.</summary>
    public string OneProcess => _one.Value;

    public string Dir(string name) => _tmp[name];

    public void Dispose() => _tmp.Dispose();

    public (int, string) Cli(int ranks, string outputDir) =>
        MpiRun.RunCli(ranks, ["run", _tmp["grpo.yaml"], $"output_dir={outputDir}", "max_steps=4"]);
}

[Collection(MpiCollection.Name)]
public sealed class DataParallelGrpoTests(GrpoBaseline baseline) : IClassFixture<GrpoBaseline>
{
    private static List<JsonElement> Metrics(string dir) =>
        File.ReadLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void RanksSampleTheSameRewardsAndTrainTheSameWeightsAsOneProcess(int ranks)
    {
        string one = baseline.OneProcess, two = baseline.Dir($"ranks-{ranks}");
        var (rc, output) = baseline.Cli(ranks, two);
        Assert.True(rc == 0, output);
        Assert.Equal(1, output.Split('\n').Count(l => l.Contains("final model:")));   // rank 0 alone reports

        var (a, b) = (Metrics(one), Metrics(two));
        Assert.Equal(a.Count, b.Count);
        var steps = a.Where(m => m.TryGetProperty("loss", out _)).ToList();
        Assert.Equal(4, steps.Count);
        Assert.Contains(steps, m => m.GetProperty("reward/std").GetDouble() > 0);    // the toy task is not degenerate
        string[] exact =
        [
            "reward/mean", "reward/std", "frac_reward_zero_std", "completions/mean_length", "completions/min_length",
            "completions/max_length", "completions/truncated_ratio", "rewards/lowercase/mean", "rewards/lowercase/std",
            "rewards/lowercase/applicable", "sampling_rounds", "groups_trained", "eval/reward_mean", "eval/sampled_reward_mean",
        ];
        string[] close = ["loss", "kl", "entropy", "grad_norm", "clip_ratio/low", "clip_ratio/high", "mismatch/is_weight_mean"];
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].GetProperty("step").GetInt64(), b[i].GetProperty("step").GetInt64());
            foreach (var p in a[i].EnumerateObject())
            {
                double x = p.Value.GetDouble(), y = b[i].GetProperty(p.Name).GetDouble();
                if (exact.Contains(p.Name)) Assert.True(x == y, $"line {i + 1} {p.Name}: {ranks} ranks {y:R}, one process {x:R}");
                else if (close.Contains(p.Name))
                    Assert.True(Math.Abs(x - y) <= 1e-4 * Math.Max(Math.Abs(x), 1e-3), $"line {i + 1} {p.Name}: {ranks} ranks {y:R}, one process {x:R}");
            }
        }
        // the sample logs hold the same groups (rank 0 holds only some of them itself)
        foreach (var f in Directory.GetFiles(Path.Combine(one, "samples")))
        {
            var other = Path.Combine(two, "samples", Path.GetFileName(f));
            Assert.True(File.Exists(other), other);
            Assert.Equal(File.ReadLines(f).Select(Completion), File.ReadLines(other).Select(Completion));
        }
        AssertCloseWeights(Path.Combine(one, "final"), Path.Combine(two, "final"));
    }

    private static string Completion(string line)
    {
        var e = JsonDocument.Parse(line).RootElement;
        return $"{e.GetProperty("group").GetInt32()} {e.GetProperty("prompt").GetString()} {e.GetProperty("completion").GetString()} {e.GetProperty("reward").GetDouble():R}";
    }

    private static void AssertCloseWeights(string expectedDir, string actualDir)
    {
        using var scope = NewDisposeScope();
        var e = PostTrain.Core.Checkpoints.SafeTensors.Load(expectedDir);
        var a = PostTrain.Core.Checkpoints.SafeTensors.Load(actualDir);
        Assert.Equal(e.Keys.Order(), a.Keys.Order());
        foreach (var (name, t) in e)
        {
            double diff = (a[name].to(ScalarType.Float64) - t.to(ScalarType.Float64)).norm().item<double>();
            double scale = Math.Max(t.to(ScalarType.Float64).norm().item<double>(), 1e-12);
            Assert.True(diff <= 3e-4 * scale, $"{name}: ||difference|| {diff:E2} against ||weight|| {scale:E2}");
        }
    }
}
