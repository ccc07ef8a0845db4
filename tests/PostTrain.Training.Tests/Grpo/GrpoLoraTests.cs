// GRPO with LoRA on a Micro base: only the adapters train and are saved (PEFT directory); the beta > 0 reference is
// the policy with its adapters off (no second model: the log says so, and the KL is exactly 0 at the first step,
// where the new adapters change nothing, then grows); rollouts run with the adapters merged, so the sampler's
// log-probs stay equal to the trainer's (adapter path) to rounding.
using System.Text.Json;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Training.Recipes;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;

namespace PostTrain.Training.Tests.Grpo;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class GrpoLoraTests
{
    [Fact]
    public async Task Lora_grpo_uses_the_adapter_free_model_as_reference_and_saves_only_adapters()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["rewards"]);
        File.WriteAllText(tmp["rewards/lowercase.js"], """
            // share of lowercase ASCII letters in the completion
            function reward(sample, options) {
              var s = sample.completion, n = 0;
              for (var i = 0; i < s.length; i++) { var c = s.charAt(i); if (c >= "a" && c <= "z") n++; }
              return s.length === 0 ? 0 : n / s.length;
            }
            """);
        File.WriteAllLines(tmp["prompts.jsonl"], Enumerable.Range(0, 8).Select(i => $"{{\"prompt\": \"Q{i}:\"}}"));
        using (var m = new DeepSeekForCausalLM(BuiltinModels.Micro()))
        {
            m.InitWeights(0.02, 1);
            PretrainedModel.Save(m, tmp["base"]);
        }
        File.WriteAllText(tmp["grpo.yaml"], $"""
            recipe: grpo
            output_dir: {tmp["run"]}
            seed: 5
            max_steps: 4
            model: {"{"} path: {tmp["base"]}, dtype: float32, device: cpu {"}"}
            data: {"{"} path: {tmp["prompts.jsonl"]}, chat_template: plain {"}"}
            rewards_dir: {tmp["rewards"]}
            rewards: [{"{"} name: lowercase, weight: 1.0 {"}"}]
            lora: {"{"} rank: 4, alpha: 16, dropout: 0.0, target_modules: [q_a_proj, q_b_proj, kv_b_proj, o_proj] {"}"}
            grpo: {"{"} prompts_per_step: 2, num_generations: 8, micro_batch_size: 16, max_completion_length: 6, beta: 0.5, rollout_correction: tis {"}"}
            optimizer: {"{"} lr: 0.05, weight_decay: 0.0 {"}"}
            scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
            checkpoint: {"{"} every_n_steps: 0, keep_last: 1 {"}"}
            logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
            """);
        var log = new StringWriter();
        int code = await RecipeRunner.RunAsync(tmp["grpo.yaml"], [], log, CancellationToken.None);
        Assert.True(code == 0, log.ToString());
        Assert.Contains("the policy with its LoRA adapters off (no second copy", log.ToString());

        var metrics = File.ReadAllLines(tmp["run/metrics.jsonl"]).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(0.0, metrics[0].GetProperty("kl").GetDouble());                  // B = 0: policy == reference exactly
        Assert.True(metrics[^1].GetProperty("kl").GetDouble() > 1e-6, log.ToString()); // the adapters moved away from the base
        foreach (var m in metrics)
            Assert.True(m.GetProperty("mismatch/logprob_abs_max").GetDouble() < 1e-3, "rollouts sample the adapted policy");

        Assert.True(PeftAdapterFiles.IsAdapterDir(tmp["run/final"]));
        var keys = SafeTensors.Load(Path.Combine(tmp["run/final"], PeftAdapterFiles.WeightsFileName)).Keys.ToList();
        Assert.Equal(2 * 4 * 2, keys.Count);
        Assert.All(keys, k => Assert.Contains(".lora_", k));
    }
}
