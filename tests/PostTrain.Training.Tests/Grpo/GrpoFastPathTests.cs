// GRPO's policy update through the training fast path (GrpoFastPath: length buckets, loss on the device, run eagerly on
// the CPU exactly as it is captured on CUDA) against the plain update, on the micro MoE model with fixed synthetic
// rollouts (prompts and completions of mixed lengths landing in several buckets, a short last micro-batch, sampler
// log-probs near the policy's, mixed advantages): three updates of mu passes each from the same init, with beta > 0 and
// without, rollout correction none / tis / mis, the three aggregations, token and sequence ratios; per-update loss and
// metrics to 1e-5 relative, final weights to fp32 rounding. Also: one micro-batch padded to its bucket (longer rows,
// more completion columns, an empty row) gives the loss and every gradient of the unpadded plain computation; the
// recipe with fast_path: on trains through it and says so, with and without routing replay; with recorded experts (drawn
// at random) replay and the routing-disagreement metric match the plain path's; fast_path: on refuses runs that do not
// qualify, naming the key.
// AdamW's eps is 1e-6 here: with 1e-8, a weight entry whose gradient is a near-cancelling sum of size ~eps moves by
// lr * g / (|g| + eps), which turns the fp32 rounding of g (the fast path sums micro-batches in another order) into a
// visible difference in that one entry; the larger eps keeps the weight comparison about the update, not that ratio.
using PostTrain.Core.FastPath;
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Runtime;
using PostTrain.Training.Grpo;
using PostTrain.Training.Recipes;
using PostTrain.Training.Run;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;
using TorchSharp;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Training.Tests.Grpo;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class GrpoFastPathTests
{
    private const int MaxPrompt = 8, MaxCompletion = 12;

    private static GrpoConfig Config(TempDir tmp, string run, string fastPath, params string[] grpo) => RecipeDocument.FromText($"""
        recipe: grpo
        output_dir: {tmp[run]}
        seed: 5
        max_steps: 3
        clip_grad_norm: 1.0
        fast_path: {fastPath}
        model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
        data: {"{"} path: {tmp["prompts.jsonl"]}, chat_template: plain, max_prompt_tokens: {MaxPrompt} {"}"}
        rewards:
          - {"{"} name: lowercase, weight: 1.0 {"}"}
        grpo:
          prompts_per_step: 2
          num_generations: 4
          micro_batch_size: 3
          max_completion_length: {MaxCompletion}
        {string.Join("\n", grpo.Select(g => "  " + g))}
        optimizer: {"{"} lr: 0.01, weight_decay: 0.01, eps: 1.0e-6 {"}"}
        scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
        checkpoint: {"{"} enabled: false {"}"}
        logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
        """, "test.yaml", []).Bind<GrpoConfig>();

    /// <summary>n samples with prompts of 2..MaxPrompt tokens and completions of 1..longest tokens (the first one
    /// longest; MaxCompletion ones truncated), sampler log-probs = the model's own plus noise, advantages in [-0.6, 1.4].</summary>
    private static List<TrainSample> Samples(DeepSeekForCausalLM model, int n, int seed, int longest = MaxCompletion, bool traces = false)
    {
        var rng = new Random(seed);
        int V = (int)model.Config.VocabSize;
        var prompts = Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, rng.Next(2, MaxPrompt + 1)).Select(_ => rng.Next(1, V)).ToArray()).ToList();
        var completions = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, i == 0 ? longest : rng.Next(1, longest + 1)).Select(_ => rng.Next(1, V)).ToArray()).ToList();
        float[][] lps;
        using (no_grad())
        using (var batch = new SequenceBatch(prompts, completions, MaxCompletion))
        {
            var (lp, _) = batch.LogProbs(model, 1.0, withEntropy: false);
            var host = lp.data<float>().ToArray();
            lps = Enumerable.Range(0, n).Select(i => host.Skip(i * MaxCompletion).Take(completions[i].Length)
                .Select(x => x + (float)(rng.NextDouble() * 0.6 - 0.3)).ToArray()).ToArray();
        }
        foreach (var moe in model.MoeLayers()) moe.TakeLoads();
        var traceRng = new Random(seed + 7919);   // its own stream: the rest of the data is the same with traces or without
        return Enumerable.Range(0, n).Select(i => new TrainSample(prompts[i],
            new Completion(completions[i], lps[i], "", completions[i].Length == MaxCompletion, "length", 0, [],
                traces ? RandomTrace(model, prompts[i].Length + completions[i].Length - 1, traceRng) : null),
            rng.NextDouble() * 2 - 0.6)).ToList();
    }

    /// <summary>A routing trace of random distinct experts per token and MoE layer (not the model's own choice, so a
    /// replay changes the forward and the disagreement is large).</summary>
    private static RoutingTrace RandomTrace(DeepSeekForCausalLM model, int positions, Random rng)
    {
        var c = model.Config;
        int layers = model.Model.Layers.Count(l => l.Moe is not null), k = c.NumExpertsPerTok;
        var experts = new short[layers * positions * k];
        for (int t = 0; t < layers * positions; t++)
        {
            var pick = Enumerable.Range(0, c.NRoutedExperts).OrderBy(_ => rng.Next()).Take(k).ToArray();
            for (int j = 0; j < k; j++) experts[t * k + j] = (short)pick[j];
        }
        return new RoutingTrace(layers, k, positions, experts);
    }

    private static (List<UpdateStats> Stats, Dictionary<string, Tensor> Weights, string Log, IReadOnlyCollection<int> Buckets, Dictionary<string, Tensor> Biases) Train(GrpoConfig cfg, bool traces = false)
    {
        var log = new StringWriter();
        var model = ModelSetup.Load(cfg.Model, cfg.Seed, TextWriter.Null).Model;
        if (cfg.Lora is { } lora) return TrainLora(cfg, model, lora, traces, log);
        DeepSeekForCausalLM? reference = null;
        if (cfg.Grpo.Beta > 0)
        {
            reference = ModelSetup.Load(cfg.Model, cfg.Seed, TextWriter.Null).Model;
            foreach (var p in reference.parameters()) p.requires_grad = false;
            reference.eval();
        }
        var sets = Enumerable.Range(0, 3).Select(i => Samples(model, 8, 100 + i, traces: traces)).ToList();
        bool fast = GrpoFastPath.Decide(cfg, model, CPU, 1, log);
        using var run = TrainingRun.Start(new RecipeContext("test.yaml", "", log), cfg, CausalLmRun.Of(model, null), dataParallel: true, fusedAdamW: fast);
        using var fastPath = fast ? GrpoFastPath.Over(cfg, model, run.Optimizer, log) : null;
        var update = new PolicyUpdate(model, reference, run, cfg.Grpo, cfg.MoeBiasGamma, fast: fastPath);
        var stats = sets.Select(s => update.Run(s, cfg.Optimizer.Lr)).ToList();
        var weights = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var biases = new Dictionary<string, Tensor>();
        foreach (var (moe, i) in model.MoeLayers().Select((m, i) => (m, i)))   // the routing biases the balancer moves
            if (moe.Gate.CorrectionBias is { } bias) biases[$"correction_bias/{i}"] = bias.detach().clone();
        reference?.Dispose();
        return (stats, weights, log.ToString(), fastPath?.Buckets.ToList() ?? [], biases);
    }

    // LoRA as GrpoRecipe runs it: adapters attached to the frozen model, the optimizer over the adapters, the KL reference
    // the base model itself with the adapters off, no routing-bias steps.
    private static (List<UpdateStats> Stats, Dictionary<string, Tensor> Weights, string Log, IReadOnlyCollection<int> Buckets, Dictionary<string, Tensor> Biases) TrainLora(
        GrpoConfig cfg, DeepSeekForCausalLM model, LoraConfig lora, bool traces, StringWriter log)
    {
        foreach (var p in model.parameters()) p.requires_grad = false;
        var adapters = PostTrain.Core.Model.LoraAdapters.Attach(model, lora.ToSettings(), cfg.Seed);
        var sets = Enumerable.Range(0, 3).Select(i => Samples(model, 8, 100 + i, traces: traces)).ToList();
        bool fast = GrpoFastPath.Decide(cfg, model, CPU, 1, log);
        var runModel = new RunModel(adapters, (_, _) => { }, _ => { }, null) { Decoder = model };
        using var run = TrainingRun.Start(new RecipeContext("test.yaml", "", log), cfg, runModel, dataParallel: true, fusedAdamW: fast);
        using var fastPath = fast ? GrpoFastPath.Over(cfg, model, run.Optimizer, log) : null;
        var update = new PolicyUpdate(model, cfg.Grpo.Beta > 0 ? model : null, run, cfg.Grpo, 0, adapters.Disabled, fastPath);
        var stats = sets.Select(s => update.Run(s, cfg.Optimizer.Lr)).ToList();
        var weights = adapters.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        return (stats, weights, log.ToString(), fastPath?.Buckets.ToList() ?? [], []);
    }

    [Fact]
    public void LoraOnTheFastPolicyUpdateEqualsThePlainOne()
    {
        // Without dropout the two paths compute the same numbers. With dropout they cannot draw the same masks (the fast
        // path's micro-batches are sorted and padded to buckets, so every draw has another shape): there the fast path
        // must apply dropout (its adapters differ from its own run without) and train alike (losses within 1%).
        using var tmp = new TempDir();
        string[] grpo = ["beta: 0.05", "mu: 2", "rollout_correction: tis"];
        LoraConfig Lora(double dropout) => new() { Rank = 4, Alpha = 8, Dropout = dropout, TargetModules = ["q_a_proj", "kv_a_proj_with_mqa", "o_proj", "gate_proj", "up_proj", "down_proj"] };
        var plain = Train(Config(tmp, "plain", "off", grpo) with { Lora = Lora(0) });
        var fast = Train(Config(tmp, "fast", "on", grpo) with { Lora = Lora(0) });
        Assert.Contains("fast_path: on: the fast policy update", fast.Log);
        Assert.True(fast.Buckets.Count >= 2, $"buckets: {string.Join(", ", fast.Buckets)}");
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.Loss).ToList(), fast.Stats.Select(s => s.Loss).ToList());
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.Kl).ToList(), fast.Stats.Select(s => s.Kl).ToList(), what: "kl");
        Assert.True(plain.Stats.All(s => s.Kl > 0), "the base model was not the reference (KL 0)");
        var w = FastPathCompare.WeightDiff(plain.Weights, fast.Weights);
        FastPathCompare.AssertWeightsClose(w, "adapter weights differ");
        double moved = plain.Weights.Where(kv => kv.Key.Contains("lora_B")).Max(kv => kv.Value.abs().max().item<float>());
        Assert.True(moved > 1e-4, $"the adapters did not train (largest lora_B {moved:E2})");

        var plainDrop = Train(Config(tmp, "plain-drop", "off", grpo) with { Lora = Lora(0.1) });
        var fastDrop = Train(Config(tmp, "fast-drop", "on", grpo) with { Lora = Lora(0.1) });
        var dropped = FastPathCompare.WeightDiff(fast.Weights, fastDrop.Weights);
        Assert.True(dropped.RelL2 > 1e-3, $"dropout 0.1 left the fast path's adapters as without dropout (relative L2 {dropped.RelL2:E2})");
        FastPathCompare.AssertLossesClose(plainDrop.Stats.Select(s => s.Loss).ToList(), fastDrop.Stats.Select(s => s.Loss).ToList(), relative: 1e-2);
        Console.WriteLine($"grpo lora fast vs plain: adapters relative L2 {w.RelL2:E2}; dropout 0.1 moves the fast adapters by {dropped.RelL2:E2}");
    }

    [Theory]
    [InlineData("beta: 0.05", "mu: 2", "rollout_correction: none", "loss_aggregation: grpo")]
    [InlineData("beta: 0.05", "mu: 2", "rollout_correction: tis", "loss_aggregation: dapo", "mask_truncated_completions: true", "epsilon_high: 0.28")]
    [InlineData("beta: 0.0", "mu: 2", "rollout_correction: mis", "rollout_correction_level: sequence", "importance_sampling: sequence", "loss_aggregation: dr_grpo")]
    [InlineData("beta: 0.0", "mu: 1", "rollout_correction: none", "loss_aggregation: grpo")]
    public void FastPolicyUpdateEqualsThePlainOne(params string[] grpo)
    {
        using var tmp = new TempDir();
        var plain = Train(Config(tmp, "plain", "off", grpo));
        var fast = Train(Config(tmp, "fast", "on", grpo));
        Assert.Contains("fast_path: off: the plain policy update", plain.Log);
        Assert.Contains("fast_path: on: the fast policy update (run eagerly: not on CUDA)", fast.Log);
        Assert.Contains("fast path: eager (CUDA graphs turned off)", fast.Log);
        Assert.True(fast.Buckets.Count >= 2, $"buckets: {string.Join(", ", fast.Buckets)}");
        Assert.Empty(plain.Buckets);
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.Loss).ToList(), fast.Stats.Select(s => s.Loss).ToList());
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.GradNorm).ToList(), fast.Stats.Select(s => s.GradNorm).ToList(), what: "grad norm");
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.Entropy).ToList(), fast.Stats.Select(s => s.Entropy).ToList(), what: "entropy");
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.Kl).ToList(), fast.Stats.Select(s => s.Kl).ToList(), what: "kl");
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.IsWeightMean).ToList(), fast.Stats.Select(s => s.IsWeightMean).ToList(), what: "is weight mean");
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.Mismatch.AbsMean).ToList(), fast.Stats.Select(s => s.Mismatch.AbsMean).ToList(), what: "mismatch");
        for (int i = 0; i < plain.Stats.Count; i++)
        {
            var (p, f) = (plain.Stats[i], fast.Stats[i]);
            Assert.Equal(p.TrainTokens, f.TrainTokens);
            Assert.Equal(p.SkippedUpdates, f.SkippedUpdates);
            Assert.Equal(p.ClipLow, f.ClipLow, 6);
            Assert.Equal(p.ClipHigh, f.ClipHigh, 6);
            Assert.Equal(p.MaskedFraction, f.MaskedFraction, 6);
        }
        Assert.True(plain.Stats.Sum(s => s.ClipLow + s.ClipHigh) > 0, "no token was clipped: the clip is untested");
        if (grpo.Contains("beta: 0.05")) Assert.True(plain.Stats.All(s => s.Kl > 0), "the KL term is untested");
        var w = FastPathCompare.WeightDiff(plain.Weights, fast.Weights);
        FastPathCompare.AssertWeightsClose(w, "final weights differ");
        var start = ModelSetup.Load(Config(tmp, "x", "off").Model, 5, TextWriter.Null).Model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        Assert.True(FastPathCompare.WeightDiff(start, plain.Weights).MaxAbs > 1e-3, "the weights did not train");
        Console.WriteLine($"grpo fast vs plain [{string.Join(", ", grpo)}]: buckets {string.Join("/", fast.Buckets.Order())}; losses " +
            $"{string.Join(" ", plain.Stats.Select(s => s.Loss.ToString("F5")))}; weights relative L2 {w.RelL2:E2}, max {w.MaxAbs:E2}");
    }

    [Theory]
    [InlineData(RolloutCorrectionMode.Tis, LossAggregation.SequenceMean, ImportanceLevel.Token)]
    [InlineData(RolloutCorrectionMode.None, LossAggregation.TokenMean, ImportanceLevel.Sequence)]
    public void PaddingToTheBucketChangesNeitherTheLossNorTheGradients(RolloutCorrectionMode mode, LossAggregation agg, ImportanceLevel level)
    {
        using var tmp = new TempDir();
        var cfg = Config(tmp, "run", "on");
        var g = cfg.Grpo with { MicroBatchSize = 4, Beta = 0.05, RolloutCorrection = mode, LossAggregation = agg, ImportanceSampling = level, EpsilonHigh = 0.28 };
        var model = ModelSetup.Load(cfg.Model, cfg.Seed, TextWriter.Null).Model;
        model.train();
        var samples = Samples(model, 3, 9, longest: 7);              // rows of 9..15 tokens: bucket 16, 12 columns
        int C = samples.Max(s => s.Completion.TokenIds.Length);
        var norm = new LossNormalizer(5, 40, MaxCompletion);                  // the whole batch's counts (more than this micro-batch)
        var refLp = randn(3, C) * 0.1 - 2;                                     // reference log-probs, as an input

        // the plain computation, unpadded (PolicyUpdate's first pass)
        using var batch = new SequenceBatch(samples.Select(s => s.PromptIds).ToList(), samples.Select(s => s.Completion.TokenIds).ToList(), C);
        var mask = CompletionMask.Build(samples.Select(s => s.Completion.TokenIds.Length).ToList(), samples.Select(s => s.Completion.Truncated).ToList(), C, false);
        var rollout = zeros(3, C);
        for (int i = 0; i < 3; i++) rollout[i].narrow(0, 0, samples[i].Completion.TokenIds.Length).copy_(tensor(samples[i].Completion.OldLogProbs));
        var adv = tensor(samples.Select(s => (float)s.Advantage).ToArray());
        var (lp, _) = batch.LogProbs(model, g.Temperature, withEntropy: true);
        var old = mode == RolloutCorrectionMode.None ? rollout : lp.detach().clone();
        var weights = RolloutCorrection.Weights(old, rollout, mask, mode, g.RolloutCorrectionCap, g.RolloutCorrectionLevel);
        var s = PolicyLoss.Clipped(lp, old, adv, mask, g.EpsilonLow, g.EpsilonHigh, level);
        var perToken = (mode == RolloutCorrectionMode.None ? s.PerToken : s.PerToken * weights) + g.Beta * KlPenalty.K3(lp, refLp);
        var plainLoss = LossAggregator.Aggregate(perToken, mask, agg, norm);
        plainLoss.backward();
        var plainGrads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        foreach (var moe in model.MoeLayers()) moe.TakeLoads();
        foreach (var p in model.parameters()) p.grad = null;

        // the fast step's loss over the micro-batch padded to its bucket
        var opt = new AdamW(model.named_parameters().Select(p => (p.name, p.parameter)), 1e-3, fused: true);
        using var fast = GrpoFastPath.Create(g, MaxPrompt, FastPathMode.On, 1.0, model, opt, TextWriter.Null);
        using var mb = fast.Prepare(samples);
        Assert.Equal(4, (int)mb.Ids.shape[0]);                                                  // an empty row
        Assert.True(mb.Length > samples.Max(x => x.PromptIds.Length + x.Completion.TokenIds.Length), $"bucket {mb.Length} pads no column");
        Assert.True(mb.Columns > C, $"{mb.Columns} completion columns for completions of up to {C}");
        var padded = zeros(4, mb.Columns);
        padded.narrow(0, 0, 3).narrow(1, 0, C).copy_(refLp);
        mb.Reference = padded;
        var fastLoss = fast.Loss(mb, null, firstPass: true, LossAggregator.Denominator(agg, norm));
        fastLoss.backward();

        double a = plainLoss.item<float>(), b = fastLoss.item<float>();
        Assert.True(Math.Abs(a - b) <= 1e-6 * Math.Max(Math.Abs(a), 1e-3), $"loss {b:R} padded, {a:R} unpadded");
        Assert.True(Math.Abs(a) > 1e-3, "the loss is trivially 0");
        double gMax = plainGrads.Values.Max(t => t.abs().max().item<float>());
        foreach (var (name, p) in model.named_parameters())
        {
            if (!plainGrads.TryGetValue(name, out var expected)) { Assert.True(p.grad is null || p.grad.abs().max().item<float>() == 0, name); continue; }
            double diff = (expected - p.grad!).abs().max().item<float>();
            Assert.True(diff <= 1e-5 * gMax, $"{name}: gradient differs by {diff:E2} (largest gradient {gMax:E2})");
        }
        Assert.True(gMax > 1e-4, "the gradients are trivially 0");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RoutingReplayAndDisagreementOnTheFastPathEqualThePlainOnes(bool replay)
    {
        // Recorded experts drawn at random (not the model's choice): with replay they change the forward, and the
        // router's own choice disagrees with them on most tokens. The fast path reads them from its buckets' static
        // buffers (rows padded to the bucket, empty rows: no record); the plain path from per-micro-batch tensors.
        using var tmp = new TempDir();
        string[] grpo = ["beta: 0.0", "mu: 2", "rollout_correction: tis", $"routing_replay: {(replay ? "true" : "false")}"];
        var plain = Train(Config(tmp, "plain", "off", grpo), traces: true);
        var fast = Train(Config(tmp, "fast", "on", grpo), traces: true);
        Assert.Contains("fast_path: on: the fast policy update", fast.Log);
        Assert.True(fast.Buckets.Count >= 2, $"buckets: {string.Join(", ", fast.Buckets)}");
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.Loss).ToList(), fast.Stats.Select(s => s.Loss).ToList());
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.GradNorm).ToList(), fast.Stats.Select(s => s.GradNorm).ToList(), what: "grad norm");
        FastPathCompare.AssertWeightsClose(FastPathCompare.WeightDiff(plain.Weights, fast.Weights), "final weights differ");
        for (int i = 0; i < plain.Stats.Count; i++)
        {
            double p = plain.Stats[i].RoutingDisagreement, f = fast.Stats[i].RoutingDisagreement;
            Assert.True(p > 0.3 && p < 1, $"update {i}: disagreement with random records {p}");
            Assert.Equal(p, f, 9);
        }
        // the same run without records: replay (or not) changes nothing, and nothing is measured
        var untraced = Train(Config(tmp, "untraced", "on", grpo));
        Assert.All(untraced.Stats, s => Assert.True(double.IsNaN(s.RoutingDisagreement)));
        var changed = Math.Abs(untraced.Stats[0].Loss - fast.Stats[0].Loss);
        if (replay) Assert.True(changed > 1e-4, $"replaying random experts left the first loss unchanged ({changed:E2})");
        else Assert.True(changed <= 1e-6 * Math.Abs(fast.Stats[0].Loss), $"records without replay changed the loss by {changed:E2}");
    }

    [Fact]
    public async Task RecipeWithFastPathOnTrainsThroughItWithAndWithoutRoutingReplay()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["rewards"]);
        File.WriteAllText(tmp["rewards/lowercase.js"], GrpoRecipeTests.LowercasePlugin);
        File.WriteAllLines(tmp["prompts.jsonl"], Enumerable.Range(0, 8).Select(i => $"{{\"prompt\": \"Q{i}:\"}}"));
        var cfg = Config(tmp, "run", "on", "beta: 0.05", "rollout_correction: tis") with { RewardsDir = tmp["rewards"] };
        var log = new StringWriter();
        var recipe = new GrpoRecipe(cfg);
        Assert.Equal(0, await recipe.RunAsync(new RecipeContext("test.yaml", "", log), CancellationToken.None));
        Assert.Contains("fast_path: on: the fast policy update (run eagerly: not on CUDA)", log.ToString());
        Assert.Contains("fast path: eager (CUDA graphs turned off)", log.ToString());
        var metrics = File.ReadAllLines(Path.Combine(tmp["run"], "metrics.jsonl"));
        Assert.Equal(3, metrics.Length);
        foreach (var line in metrics)
        {
            var m = System.Text.Json.JsonDocument.Parse(line).RootElement;
            Assert.True(double.IsFinite(m.GetProperty("loss").GetDouble()), line);
            Assert.True(double.IsFinite(m.GetProperty("grad_norm").GetDouble()), line);
            Assert.Equal(0.0, m.GetProperty("mismatch/routing_disagreement").GetDouble());   // fp32 on the CPU: the rollout's experts
            Assert.Equal(1.0, m.GetProperty("mismatch/is_weight_mean").GetDouble(), 5);   // fp32 on the CPU: rollout = trainer
        }
        var replay = cfg with { OutputDir = tmp["replay"], Grpo = cfg.Grpo with { RoutingReplay = true } };
        var replayLog = new StringWriter();
        Assert.Equal(0, await new GrpoRecipe(replay).RunAsync(new RecipeContext("test.yaml", "", replayLog), CancellationToken.None));
        Assert.Contains("fast_path: on: the fast policy update", replayLog.ToString());
        foreach (var line in File.ReadAllLines(Path.Combine(tmp["replay"], "metrics.jsonl")))
            Assert.Equal(0.0, System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("mismatch/routing_disagreement").GetDouble());
    }

    [Fact]
    public void RoutingBiasUpdatesCountRealTokensOnlyOnBothPaths()
    {
        // moe_bias_gamma > 0: the fast update pads micro-batches to their length bucket (and a short last one with empty
        // rows), the plain one to the micro-batch's longest row; both count only the real tokens as load, so the routing
        // biases move alike (sign steps of gamma: a padded token counted would flip some of them)
        using var tmp = new TempDir();
        var plain = Train(Config(tmp, "plain", "off", "mu: 1") with { MoeBiasGamma = 0.05 });
        var fast = Train(Config(tmp, "fast", "on", "mu: 1") with { MoeBiasGamma = 0.05 });
        Assert.Contains("fast_path: on: the fast policy update", fast.Log);
        Assert.Contains(plain.Biases.Values, b => b.abs().max().item<float>() > 0);   // the decoder's MoE layers moved (the MTP layer's did not run)
        foreach (var (k, b) in plain.Biases)
            Assert.True(b.equal(fast.Biases[k]).all().item<bool>(), $"{k}: plain {b.str()} fast {fast.Biases[k].str()}");
        FastPathCompare.AssertLossesClose(plain.Stats.Select(s => s.Loss).ToList(), fast.Stats.Select(s => s.Loss).ToList());
    }

    [Theory]
    [InlineData("sgd", "optimizer.name: sgd")]
    [InlineData("offload", "optimizer.offload: host")]
    [InlineData("recompute", "recompute: layer")]
    public void FastPathOnRefusesARunThatDoesNotQualifyNamingTheKey(string change, string key)
    {
        using var tmp = new TempDir();
        var on = Config(tmp, "run", "on");
        var cfg = change switch
        {
            "sgd" => on with { Optimizer = on.Optimizer with { Name = OptimizerKind.Sgd } },
            "offload" => on with { Optimizer = on.Optimizer with { Offload = OptimizerOffload.Host } },
            _ => on with { Recompute = PostTrain.Core.Recompute.RecomputeMode.Layer },
        };
        var model = ModelSetup.Load(cfg.Model, cfg.Seed, TextWriter.Null).Model;
        var e = Assert.Throws<RecipeConfigException>(() => GrpoFastPath.Decide(cfg, model, CPU, 1, TextWriter.Null));
        Assert.StartsWith("fast_path: on, but this run does not qualify: " + key, e.Message);
        var auto = new StringWriter();
        Assert.False(GrpoFastPath.Decide(cfg with { FastPath = FastPathMode.Auto }, model, CPU, 1, auto));
        Assert.StartsWith("fast_path: auto: the plain policy update (" + key, auto.ToString());
        e = Assert.Throws<RecipeConfigException>(() => GrpoFastPath.Decide(on, model, CPU, 2, TextWriter.Null));
        Assert.StartsWith("fast_path: on, but this run does not qualify: distributed: 2 processes", e.Message);
    }
}
