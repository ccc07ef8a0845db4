// sft through the training fast path (fast_path: on, run eagerly on the CPU exactly as it is captured on CUDA) against
// the plain step (fast_path: auto on the CPU): per-step losses and the final weights over 5 steps of the micro MoE
// model on packed arithmetic data (rows of 320 tokens, most of them ending in padding, as packed rows do); a run that switches paths at a checkpoint (3 fast steps, resumed for 2 plain ones)
// against the uninterrupted plain run; the MTP loss and gradient accumulation on the fast path against the plain step;
// optimizer.fused: true against false on the plain step; and fast_path: on refused for runs that do not qualify, naming the key.
using PostTrain.Core.Checkpoints;
using PostTrain.Training.Recipes;
using PostTrain.Training.Sft;
using PostTrain.Training.Tests.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Sft;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class SftFastPathTests
{
    static SftConfig Config(string outDir, long maxSteps, string fastPath) =>
        RecipeDocument.FromText($"""
            recipe: sft
            output_dir: {outDir}
            seed: 7
            max_steps: {maxSteps}
            mtp_lambda: 0
            fast_path: {fastPath}
            model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
            data:
              path: {RepoPaths.Of("datasets/arithmetic/train.parquet")}
              max_seq_len: 320
              batch_size: 4
              packed: true
            optimizer: {"{"} lr: 0.003, weight_decay: 0.01 {"}"}
            scheduler: {"{"} name: constant, warmup_steps: 2 {"}"}
            checkpoint: {"{"} every_n_steps: 3, keep_last: 2, resume: true {"}"}
            logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 100 {"}"}
            """, "test.yaml", []).Bind<SftConfig>();

    static async Task<(SftRecipe Recipe, string Log)> Run(SftConfig cfg)
    {
        var recipe = new SftRecipe(cfg);
        var log = new StringWriter();
        var ctx = new RecipeContext("test.yaml", "", log);
        Assert.Equal(0, await recipe.RunAsync(ctx, CancellationToken.None));
        return (recipe, log.ToString());
    }

    static string Temp() => Path.Combine(Path.GetTempPath(), "posttrain-sft-fast-" + Guid.NewGuid().ToString("N"));

    static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Abs(expected[i]),
                $"step {i + 1}: loss {actual[i]:R}, plain step {expected[i]:R}");
    }

    /// <summary>||a - b|| / ||a|| over all weights together (Adam turns fp32 rounding in near-zero gradients into
    /// differences of a fraction of lr in single entries, so the whole model's relative L2 is the measure, as in
    /// bench-train's self-check), and the largest |a - b| of any entry with its tensor's name.</summary>
    static (double RelL2, double MaxAbs, string Name) WeightDiff(string dirA, string dirB)
    {
        var a = SafeTensors.Load(Path.Combine(dirA, "final", "model.safetensors"));
        var b = SafeTensors.Load(Path.Combine(dirB, "final", "model.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        double diff2 = 0, norm2 = 0, maxAbs = 0;
        string worst = "";
        foreach (var (name, t) in a)
        {
            var d = (t - b[name]).to(ScalarType.Float64);
            diff2 += d.pow(2).sum().item<double>();
            norm2 += t.to(ScalarType.Float64).pow(2).sum().item<double>();
            double m = d.abs().max().item<double>();
            if (m > maxAbs) (maxAbs, worst) = (m, name);
        }
        return (Math.Sqrt(diff2 / norm2), maxAbs, worst);
    }

    static bool HasAccuracy(string dir) => File.ReadAllText(Path.Combine(dir, "metrics.jsonl")).Contains("token_accuracy");

    [Fact]
    public async Task FastPathEqualsThePlainStepAndResumesAcrossPaths()
    {
        string plainDir = Temp(), fastDir = Temp(), mixedDir = Temp();
        var (plain, plainLog) = await Run(Config(plainDir, 5, "auto"));
        var (fast, fastLog) = await Run(Config(fastDir, 5, "on"));
        Assert.Contains("fast_path: auto: the plain training step (not on CUDA)", plainLog);
        Assert.Contains("fast_path: on: the fast training step (run eagerly: not on CUDA)", fastLog);
        Assert.Contains("fast path: eager (CUDA graphs turned off)", fastLog);
        Assert.True(HasAccuracy(plainDir));
        Assert.False(HasAccuracy(fastDir));                     // every step took the fast path (it has no full logits)
        AssertClose(plain.TrainLosses, fast.TrainLosses);
        Assert.True(plain.TrainLosses[^1] < plain.TrainLosses[0], string.Join(", ", plain.TrainLosses));   // it trains
        var w = WeightDiff(plainDir, fastDir);
        Assert.True(w.RelL2 <= 1e-5 && w.MaxAbs <= 1e-4, $"final weights differ: relative L2 {w.RelL2:E2}, max {w.MaxAbs:E2} in {w.Name}");

        // 3 fast steps (checkpoint at 3, fused AdamW state), then resumed for 2 plain steps
        var (first, _) = await Run(Config(mixedDir, 3, "on"));
        var (rest, _) = await Run(Config(mixedDir, 5, "off"));
        AssertClose(plain.TrainLosses, [.. first.TrainLosses, .. rest.TrainLosses]);
        var wm = WeightDiff(plainDir, mixedDir);
        Assert.True(wm.RelL2 <= 1e-5 && wm.MaxAbs <= 1e-4, $"final weights after switching paths differ: relative L2 {wm.RelL2:E2}, max {wm.MaxAbs:E2} in {wm.Name}");
        var fm = WeightDiff(fastDir, mixedDir);
        Assert.True(fm.MaxAbs > 0, "the resumed run's last 2 steps did not take the plain path");   // plain steps 4-5 round differently
        Console.WriteLine($"sft fast vs plain, 5 steps: relative L2 {w.RelL2:E2}, max {w.MaxAbs:E2}; fast 3 + plain 2: relative L2 {wm.RelL2:E2}, " +
            $"max {wm.MaxAbs:E2}; fast 5 vs fast 3 + plain 2: relative L2 {fm.RelL2:E2}");
        foreach (var d in new[] { plainDir, fastDir, mixedDir }) Directory.Delete(d, true);
    }

    /// <summary>Per step, the metrics line's value of <paramref name="key"/>.</summary>
    static List<double> Metric(string dir, string key) => File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"))
        .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
        .Where(m => m.TryGetProperty(key, out _)).Select(m => m.GetProperty(key).GetDouble()).ToList();

    [Theory]
    [InlineData(0.3, 1)]
    [InlineData(0.0, 2)]
    [InlineData(0.3, 3)]
    public async Task MtpLossAndGradientAccumulationOnTheFastPathEqualThePlainStep(double mtpLambda, int accumulation)
    {
        // The MTP depths' chunked head loss and the accumulation bodies (each dividing by the whole step's target counts)
        // against the plain step's Losses.Total over full logits, micro-batch by micro-batch.
        string plainDir = Temp(), fastDir = Temp();
        SftConfig With(SftConfig c) => c with { MtpLambda = mtpLambda, GradientAccumulationSteps = accumulation };
        var (plain, _) = await Run(With(Config(plainDir, 4, "off")));
        var (fast, fastLog) = await Run(With(Config(fastDir, 4, "on")));
        Assert.Contains("fast_path: on: the fast training step", fastLog);
        Assert.False(HasAccuracy(fastDir));                     // every step took the fast path
        AssertClose(plain.TrainLosses, fast.TrainLosses);
        Assert.True(plain.TrainLosses[^1] < plain.TrainLosses[0], string.Join(", ", plain.TrainLosses));
        var plainMtp = Metric(plainDir, "mtp_loss");
        var fastMtp = Metric(fastDir, "mtp_loss");
        if (mtpLambda > 0)
        {
            Assert.Equal(4, plainMtp.Count);
            AssertClose(plainMtp, fastMtp);
        }
        else Assert.Empty(fastMtp);
        var w = WeightDiff(plainDir, fastDir);
        Assert.True(w.RelL2 <= 1e-5 && w.MaxAbs <= 1e-4, $"final weights differ: relative L2 {w.RelL2:E2}, max {w.MaxAbs:E2} in {w.Name}");
        // the MTP loss trains the MTP module: with mtp_lambda 0 only weight decay moves it (lr 0.003 x wd 0.01 x 4 steps
        // x |w| < 1e-4), with 0.3 Adam steps of ~lr do
        var start = Temp();
        await Run(With(Config(start, 0, "off")));
        var mtpMoved = WeightDiffOf(fastDir, start, $"model.layers.{PostTrain.Core.Model.BuiltinModels.Micro().NumHiddenLayers}.eh_proj");   // the MTP module's own projection (HF names)
        Console.WriteLine($"mtp_lambda {mtpLambda}: the MTP module moved by up to {mtpMoved:E2}");
        if (mtpLambda > 0) Assert.True(mtpMoved > 1e-3, $"the MTP module did not train ({mtpMoved:E2})");
        else Assert.True(mtpMoved < 1e-4, $"the MTP module moved by {mtpMoved:E2} without an MTP loss");
        foreach (var d in new[] { plainDir, fastDir, start }) if (Directory.Exists(d)) Directory.Delete(d, true);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LoraOnTheFastPathEqualsThePlainStep(bool routedExperts)
    {
        // adapters on the attention projections and the MLPs (with routedExperts, the routed experts' grouped adapters
        // too), dropout 0.1 on their input: the fast step trains the optimizer's parameters (the adapters; the base
        // model is frozen) and draws the same dropout masks in the same order as the plain step
        string plainDir = Temp(), fastDir = Temp(), noDropDir = Temp();
        SftConfig With(SftConfig c, double dropout = 0.1) => c with
        {
            Model = c.Model with { Path = RepoPaths.Of("models/tiny-moe-arith-base") },
            Lora = new LoraConfig { Rank = 4, Alpha = 8, Dropout = dropout, RoutedExperts = routedExperts,
                TargetModules = ["q_a_proj", "kv_a_proj_with_mqa", "o_proj", "gate_proj", "up_proj", "down_proj"] },
            Data = c.Data with { MaxSeqLen = 128, BatchSize = 2 },
        };
        var (plain, _) = await Run(With(Config(plainDir, 4, "off")));
        var (fast, fastLog) = await Run(With(Config(fastDir, 4, "on")));
        Assert.Contains("fast_path: on: the fast training step", fastLog);
        Assert.False(HasAccuracy(fastDir));
        AssertClose(plain.TrainLosses, fast.TrainLosses);
        Assert.True(plain.TrainLosses.Distinct().Count() > 1, string.Join(", ", plain.TrainLosses));
        double moved = 0;
        foreach (var (name, t) in Adapters(plainDir))
            if (name.Contains("lora_B")) moved = Math.Max(moved, t.abs().max().item<float>());   // B starts at zero
        Assert.True(moved > 1e-4, $"the adapters did not train (largest lora_B entry {moved:E2})");
        double rel = AdapterDiff(plainDir, fastDir);
        // the same fast run without dropout: what a step that dropped nothing (or other masks) would look like
        await Run(With(Config(noDropDir, 4, "on"), dropout: 0.0));
        double noDrop = AdapterDiff(plainDir, noDropDir);
        Console.WriteLine($"lora (routed experts {routedExperts}): adapters relative L2 {rel:E2} (without dropout {noDrop:E2}), largest lora_B {moved:E2}");
        // fp32 rounding, which Adam amplifies on near-zero gradients, moves these by 3e-6 to 1.6e-5 from run to run (with
        // and without dropout); leaving dropout out moves them by far more
        Assert.True(rel <= 5e-5, $"adapter weights differ: relative L2 {rel:E2}");
        Assert.True(noDrop > 20 * 5e-5, $"dropout barely changes the adapters ({noDrop:E2}): the comparison cannot see it");
        foreach (var d in new[] { plainDir, fastDir, noDropDir }) if (Directory.Exists(d)) Directory.Delete(d, true);
    }

    static Dictionary<string, Tensor> Adapters(string dir) => SafeTensors.Load(Path.Combine(dir, "final", "adapter_model.safetensors"));

    /// <summary>||a - b|| / ||a|| over two runs' adapter weights together.</summary>
    static double AdapterDiff(string dirA, string dirB)
    {
        var (a, b) = (Adapters(dirA), Adapters(dirB));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        Assert.Contains(a.Keys, k => k.Contains("lora_B"));
        double diff = 0, norm = 0;
        foreach (var (name, t) in a)
        {
            diff += (t - b[name]).to(ScalarType.Float64).pow(2).sum().item<double>();
            norm += t.to(ScalarType.Float64).pow(2).sum().item<double>();
        }
        return Math.Sqrt(diff / norm);
    }

    /// <summary>Largest |a - b| over the weights whose name starts with <paramref name="prefix"/>.</summary>
    static double WeightDiffOf(string dirA, string dirB, string prefix)
    {
        var a = SafeTensors.Load(Path.Combine(dirA, "final", "model.safetensors"));
        var b = SafeTensors.Load(Path.Combine(dirB, "final", "model.safetensors"));
        var names = a.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(names);
        return names.Max(n => (a[n] - b[n]).abs().max().item<float>());
    }

    [Theory]
    [InlineData("sgd", "optimizer.name: sgd")]
    [InlineData("bf16_moments", "optimizer.bf16_moments")]
    [InlineData("unfused", "optimizer.fused: false")]
    public async Task FastPathOnRefusesARunThatDoesNotQualifyNamingTheKey(string change, string key)
    {
        string dir = Temp();
        var on = Config(dir, 1, "on");
        var cfg = change switch
        {
            "sgd" => on with { Optimizer = on.Optimizer with { Name = OptimizerKind.Sgd } },
            "bf16_moments" => on with { Optimizer = on.Optimizer with { Bf16Moments = true } },
            _ => on with { Optimizer = on.Optimizer with { Fused = FusedOptimizer.False } },
        };
        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(cfg));
        Assert.StartsWith("fast_path: on, but this run does not qualify: " + key, e.Message);
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    [Fact]
    public void DataParallelQualifiesWithZeroZeroAndAnEvenSplitOnly()
    {
        var cfg = Config(Temp(), 1, "on");   // batch_size 4
        using var model = new PostTrain.Core.Model.DeepSeekForCausalLM(PostTrain.Core.Model.BuiltinModels.Micro());
        Assert.Null(SftFastPath.Disqualified(cfg, model, 2));
        Assert.Null(SftFastPath.Disqualified(cfg, model, 4));
        Assert.StartsWith("data.batch_size: 4 rows do not split evenly over 3 processes", SftFastPath.Disqualified(cfg, model, 3));
        Assert.StartsWith("distributed.zero_stage: 1", SftFastPath.Disqualified(cfg with { Distributed = cfg.Distributed with { ZeroStage = 1 } }, model, 2));
        Assert.StartsWith("distributed.expert_parallel: 2", SftFastPath.Disqualified(cfg with { Distributed = cfg.Distributed with { ExpertParallel = 2 } }, model, 2));
        Assert.Null(SftFastPath.Disqualified(cfg with { Distributed = cfg.Distributed with { ZeroStage = 1 } }, model, 1));   // one process: no data parallel
    }

    [Fact]
    public async Task FusedAdamWOnThePlainStepEqualsTheUnfusedOne()
    {
        string plainDir = Temp(), fusedDir = Temp();
        var plain = Config(plainDir, 3, "off");
        var (unfused, _) = await Run(plain with { Optimizer = plain.Optimizer with { Fused = FusedOptimizer.False } });
        var (fused, _) = await Run(Config(fusedDir, 3, "off") with { Optimizer = plain.Optimizer with { Fused = FusedOptimizer.True } });
        AssertClose(unfused.TrainLosses, fused.TrainLosses);
        var w = WeightDiff(plainDir, fusedDir);
        Assert.True(w.RelL2 <= 1e-5 && w.MaxAbs <= 1e-4, $"fused AdamW weights differ: relative L2 {w.RelL2:E2}, max {w.MaxAbs:E2} in {w.Name}");
        Assert.True(w.MaxAbs > 0, "optimizer.fused: true did not change the kernel");   // fused rounds differently
        var bad = Config(Temp(), 1, "off");
        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(bad with { Optimizer = bad.Optimizer with { Fused = FusedOptimizer.True, Bf16Moments = true } }));
        Assert.StartsWith("optimizer.fused: true keeps the moments", e.Message);
        foreach (var d in new[] { plainDir, fusedDir, bad.OutputDir }) if (Directory.Exists(d)) Directory.Delete(d, true);
    }

    [Fact]
    public void TheKeyParsesAndABadValueNamesIt()
    {
        Assert.Equal(PostTrain.Core.FastPath.FastPathMode.Off, Config(Temp(), 1, "off").FastPath);
        Assert.Equal(PostTrain.Core.FastPath.FastPathMode.Auto, RecipeDocument.FromText($"""
            recipe: sft
            output_dir: x
            model: {"{"} path: micro-moe {"}"}
            data: {"{"} path: y {"}"}
            """, "test.yaml", []).Bind<SftConfig>().FastPath);
        var e = Assert.ThrowsAny<Exception>(() => Config(Temp(), 1, "sometimes"));
        Assert.Contains("fast_path", e.Message);
    }
}
