// The `model` reward: its scores equal the reward model's own on the same rendering (one sample at a time vs the
// reward's padded micro-batches), also through RewardRunner beside a rule reward; its transforms follow their
// formulas; bad options and a directory without the head are errors naming the option or tensor; and it runs inside
// a GRPO recipe next to the math reward, weighted.
using System.Text.Json;
using PostTrain.Core.Model;
using PostTrain.Data.Examples;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Rewards;
using PostTrain.Training.Recipes;
using PostTrain.Training.RewardModeling;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.RewardModeling;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class ModelRewardTests
{
    static readonly RewardInput[] Inputs =
    [
        new("What is 2 + 3?", "2 + 3 = 5\nThe answer is \\boxed{5}.", Cols("5")),
        new("What is 7 - 4?", "7 - 4 = 2", Cols("3")),
        new("Add 10 and 15.", "25", Cols("25")),
        new("Tom has 4 apples and buys 9 more. How many now?", "4 + 9 = 13\nThe answer is \\boxed{13}.", Cols("13")),
        new("Hi", "", Cols("1")),
    ];

    static IReadOnlyDictionary<string, object?> Cols(string answer) => new Dictionary<string, object?> { ["answer"] = answer };

    static Dictionary<string, object?> Options(string path, params (string, object?)[] extra)
    {
        var o = new Dictionary<string, object?> { ["path"] = path, ["batch_size"] = "2", ["device"] = "cpu", ["chat_template"] = "plain" };
        foreach (var (k, v) in extra) o[k] = v;
        return o;
    }

    static string SaveMicroRm(TempDir tmp)
    {
        using var rm = RewardModelFiles.Random(BuiltinModels.Micro(), 21, std: 0.1);
        rm.InitScore(0.5, 21);
        RewardModelFiles.Save(rm, tmp["rm"], ByteTokenizer.Instance.PadId);
        return tmp["rm"];
    }

    static double[] Direct(string dir)
    {
        using var rm = RewardModelFiles.Load(dir);
        rm.eval();
        var template = new ChatTemplate(ByteTokenizer.Instance, ChatTemplateSpec.Plain);
        using var _ = no_grad();
        return Inputs.Select(i =>
        {
            var ids = template.Render(new ChatExample([ChatMessage.User(i.Prompt), ChatMessage.Assistant(i.Completion)])).InputIds;
            return (double)rm.Forward(tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length])).item<float>();
        }).ToArray();
    }

    [Fact]
    public void ScoresEqualTheRewardModelsOwnAlsoThroughTheRunnerBesideARuleReward()
    {
        using var tmp = new TempDir();
        var dir = SaveMicroRm(tmp);
        var expected = Direct(dir);
        var registry = TrainingRewardRegistry.Create(null);
        Assert.Contains(registry.List(), r => r.Name == "model");
        using var reward = (ModelReward)registry.Create("model", Options(dir));
        var batch = reward.ScoreBatch(Inputs, CancellationToken.None);
        for (int i = 0; i < Inputs.Length; i++) Assert.Equal(expected[i], batch[i].Score!.Value, 1e-5);
        Assert.Equal(expected[3], reward.Score(Inputs[3], CancellationToken.None).Score!.Value, 1e-5);

        var runner = new RewardRunner([new WeightedReward(registry.Create("math")), new WeightedReward(reward, 0.5)]);
        var scored = runner.Score(Inputs);
        for (int i = 0; i < Inputs.Length; i++)
        {
            Assert.Equal(expected[i], scored.Score(i, 1)!.Value, 1e-5);
            Assert.Equal(scored.Score(i, 0)!.Value + 0.5 * expected[i], scored.Totals[i]!.Value, 1e-5);
        }
        Assert.Equal([1.0, 0.0, 1.0, 1.0, 0.0], Enumerable.Range(0, Inputs.Length).Select(i => scored.Score(i, 0)!.Value));
        Assert.Equal(Inputs.Length, scored.Stats[1].Applicable);
    }

    [Fact]
    public void TransformsFollowTheirFormulas()
    {
        using var tmp = new TempDir();
        var dir = SaveMicroRm(tmp);
        var raw = Direct(dir);
        var registry = TrainingRewardRegistry.Create(null);
        using var sig = (ModelReward)registry.Create("model", Options(dir, ("transform", "sigmoid")));
        using var std = (ModelReward)registry.Create("model", Options(dir, ("transform", "standardize")));
        var s = sig.ScoreBatch(Inputs, CancellationToken.None);
        var z = std.ScoreBatch(Inputs, CancellationToken.None);
        double mean = raw.Average(), sd = Math.Sqrt(raw.Sum(r => (r - mean) * (r - mean)) / raw.Length);
        for (int i = 0; i < raw.Length; i++)
        {
            Assert.Equal(1 / (1 + Math.Exp(-raw[i])), s[i].Score!.Value, 1e-5);
            Assert.Equal((raw[i] - mean) / sd, z[i].Score!.Value, 1e-3);
            Assert.Equal(raw[i], z[i].Metrics!["raw"], 1e-5);
        }
        Assert.Equal([0.0, 0.0], ModelReward.Apply(RewardTransform.Standardize, [2.5, 2.5]));
    }

    [Fact]
    public void BadOptionsAndADirectoryWithoutTheHeadAreErrorsNamingThem()
    {
        using var tmp = new TempDir();
        var dir = SaveMicroRm(tmp);
        var registry = TrainingRewardRegistry.Create(null);
        Assert.Contains("'path'", Assert.Throws<RewardConfigException>(() => registry.Create("model", new Dictionary<string, object?>())).Message);
        Assert.Contains("did you mean 'batch_size'", Assert.Throws<RewardConfigException>(() => registry.Create("model", Options(dir, ("batchsize", "4")))).Message);
        Assert.Contains("transform", Assert.Throws<RewardConfigException>(() => registry.Create("model", Options(dir, ("transform", "tanh")))).Message);
        using var lm = new DeepSeekForCausalLM(BuiltinModels.Micro());
        lm.InitWeights(0.1, 1);
        PretrainedModel.Save(lm, tmp["lm"]);
        var e = Assert.Throws<RewardConfigException>(() => registry.Create("model", Options(tmp["lm"])));
        Assert.Contains("score.weight", e.Message);
        Assert.Contains(tmp["lm"], e.Message);
    }

    [Fact]
    public async Task RunsInsideGrpoBesideTheMathReward()
    {
        using var tmp = new TempDir();
        var dir = SaveMicroRm(tmp);
        File.WriteAllLines(tmp["prompts.jsonl"], Enumerable.Range(1, 4).Select(i => $"{{\"prompt\": \"What is {i} + {i}?\", \"answer\": \"{2 * i}\"}}"));
        File.WriteAllText(tmp["grpo.yaml"], $"""
            recipe: grpo
            output_dir: {tmp["run"]}
            seed: 5
            max_steps: 2
            model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
            data: {"{"} path: {tmp["prompts.jsonl"]}, chat_template: plain {"}"}
            rewards_dir: null
            rewards:
              - {"{"} name: math, weight: 1.0 {"}"}
              - {"{"} name: model, weight: 0.5, options: {"{"} path: {dir}, batch_size: 4, device: cpu, chat_template: plain {"}"} {"}"}
            grpo: {"{"} prompts_per_step: 2, num_generations: 4, micro_batch_size: 8, max_completion_length: 6 {"}"}
            samples_every_n_steps: 0
            optimizer: {"{"} lr: 0.01, weight_decay: 0.0 {"}"}
            scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
            checkpoint: {"{"} every_n_steps: 0, keep_last: 1, resume: false {"}"}
            logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
            """);
        var log = new StringWriter();
        Assert.Equal(0, await RecipeRunner.RunAsync(tmp["grpo.yaml"], [], log, CancellationToken.None));
        var metrics = File.ReadAllLines(tmp["run/metrics.jsonl"]).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, metrics.Count);
        foreach (var m in metrics)
        {
            double math = m.GetProperty("rewards/math/mean").GetDouble(), model = m.GetProperty("rewards/model/mean").GetDouble();
            Assert.Equal(8, m.GetProperty("rewards/model/applicable").GetDouble());
            Assert.Equal(0, m.GetProperty("rewards/model/errors").GetDouble());
            Assert.Equal(math + 0.5 * model, m.GetProperty("reward/mean").GetDouble(), 9);   // both score every sample
            Assert.True(m.TryGetProperty("rewards/model/raw", out _));
        }
    }
}
