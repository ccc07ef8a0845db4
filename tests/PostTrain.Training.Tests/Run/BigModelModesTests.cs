// The training modes a 16B model needs, end to end through SFT on a micro model: the EMA of the weights (host,
// background) equals the recurrence over the weights the run checkpointed at each step and is saved as its own model
// directory; the host-offloaded AdamW trains exactly as the on-device AdamW (fp32 parameters), and with bf16 device
// parameters; bf16 parameters without fp32 masters are refused; the memory plan of the 16B shape (built on the meta
// device, no memory) per mode equals the bytes worked out by hand.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Training.Recipes;
using PostTrain.Training.Run;
using PostTrain.Training.Sft;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Run;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class BigModelModesTests
{
    private static SftConfig Config(string start, string outDir, long maxSteps, string extra, string paramDtype = "float32") => RecipeDocument.FromText($"""
        recipe: sft
        output_dir: {outDir}
        seed: 3
        max_steps: {maxSteps}
        mtp_lambda: 0
        model: {"{"} path: {start}, dtype: {(paramDtype == "float32" ? "float32" : "bfloat16")}, param_dtype: {paramDtype}, device: cpu {"}"}
        data: {"{"} path: {RepoPaths.Of("datasets/arithmetic/test.parquet")}, max_seq_len: 96, batch_size: 4 {"}"}
        scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
        checkpoint: {"{"} every_n_steps: 1, keep_last: 10 {"}"}
        logging: {"{"} tensorboard: false, progress: plain {"}"}
        {extra}
        """, "big.yaml", []).Bind<SftConfig>();

    private static async Task<SftRecipe> Run(SftConfig cfg)
    {
        var recipe = new SftRecipe(cfg);
        Assert.Equal(0, await recipe.RunAsync(new RecipeContext("big.yaml", "", TextWriter.Null), CancellationToken.None));
        return recipe;
    }

    private static string SaveBase(TempDir tmp)
    {
        string start = tmp["base"];
        using var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.InitWeights(0.02, 1);
        PretrainedModel.Save(m, start);
        return start;
    }

    private static Dictionary<string, Tensor> Params(string dir)
    {
        var (m, _) = PretrainedModel.Load(dir);
        return m.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter.detach());
    }

    [Fact]
    public void Memory_plan_of_the_16b_shape_per_mode()
    {
        var cfg = ModelConfig.Load(RepoPaths.Of("benchmarks/moonlight-16b/config.json"));
        using var model = new DeepSeekForCausalLM(cfg, new Device("meta"));
        model.to(ScalarType.BFloat16);                                          // model.param_dtype: bfloat16
        const long n = 15_960_110_208 - 26 * 64;   // checkpoint tensors (RealSizeCheckpointTests) less the correction-bias buffers
        Assert.Equal(n, model.parameters().Sum(p => p.numel()));

        var host = MemoryPlan.Of(model, model, new OptimizerConfig { Offload = OptimizerOffload.Host, Bf16Moments = true }, new EmaConfig());
        Assert.Equal(2 * n, host.ModelBytes);
        Assert.Equal(2 * n, host.GradientBytes);
        Assert.Equal(0, host.OptimizerDeviceBytes);
        Assert.Equal(2 * 2 * n + 4 * n + 2 * n, host.OptimizerHostBytes);     // bf16 moments, fp32 masters, bf16 gradient buffers
        Assert.Equal(4 * n, host.EmaHostBytes);
        Assert.InRange(host.DeviceBytes / 1e9, 63.8, 63.9);

        var fp32 = MemoryPlan.Of(model, model, new OptimizerConfig { Offload = OptimizerOffload.Host }, null);
        Assert.Equal(2 * 4 * n + 4 * n + 2 * n, fp32.OptimizerHostBytes);
        Assert.Equal(0, fp32.EmaHostBytes);

        using var micro = new DeepSeekForCausalLM(BuiltinModels.Micro());
        using var lora = LoraAdapters.Attach(micro, new LoraSettings(4, 8, 0, ["o_proj"]), seed: 1);
        long a = lora.parameters().Sum(p => p.numel());                         // fp32 adapters, on-device AdamW
        var plan = MemoryPlan.Of(micro, lora, new OptimizerConfig(), null);
        Assert.Equal(micro.parameters().Sum(p => p.numel()) * 4, plan.ModelBytes);
        Assert.Equal((4 * a, 8 * a, 0L), (plan.GradientBytes, plan.OptimizerDeviceBytes, plan.HostBytes));
    }

    [Fact]
    public async Task Ema_equals_the_recurrence_over_the_checkpointed_weights_and_is_saved_as_a_model()
    {
        using var tmp = new TempDir();
        string start = SaveBase(tmp);
        const double d = 0.6;
        await Run(Config(start, tmp["a"], 3, "ema: { decay: 0.6, every: 1 }\noptimizer: { lr: 0.01 }"));

        var expected = Params(start);                                            // ema_0 = the starting weights
        for (int step = 1; step <= 3; step++)
            foreach (var (name, w) in Params(tmp[$"a/step-{step:D6}/model"]))
                expected[name] = expected[name] * d + w * (1 - d);
        var ema = Params(tmp["a/ema"]);
        Assert.Equal(expected.Keys.Order(), ema.Keys.Order());
        foreach (var (name, e) in expected)
            Assert.True(ema[name].allclose(e, rtol: 0, atol: 1e-6), name);
        var last = Params(tmp["a/final"]);
        Assert.False(ema["model.layers.0.self_attn.o_proj.weight"].allclose(last["model.layers.0.self_attn.o_proj.weight"]), "the EMA lags the weights");
        Assert.True(File.Exists(tmp["a/step-000003/ema.safetensors"]));
    }

    [Fact]
    public async Task Host_offloaded_adamw_trains_as_the_on_device_adamw()
    {
        using var tmp = new TempDir();
        string start = SaveBase(tmp);
        var device = await Run(Config(start, tmp["a"], 3, "optimizer: { lr: 0.01 }"));
        var host = await Run(Config(start, tmp["b"], 3, "optimizer: { lr: 0.01, offload: host }"));
        Assert.Equal(device.TrainLosses, host.TrainLosses);
        var a = Params(tmp["a/final"]);
        var b = Params(tmp["b/final"]);
        foreach (var (name, w) in a) Assert.True(w.allclose(b[name], rtol: 0, atol: 1e-7), name);
        Assert.True(SafeTensors.ReadHeader(tmp["b/step-000003/optimizer.safetensors"]).ContainsKey("lm_head.weight.master"));

        // bf16 device parameters with the fp32 masters on the host: it trains (the loss falls)
        var bf16 = await Run(Config(start, tmp["c"], 8, "optimizer: { lr: 0.01, offload: host, bf16_moments: true }", "bfloat16"));
        Assert.True(bf16.TrainLosses.TakeLast(2).Average() < bf16.TrainLosses.Take(2).Average() - 0.1, string.Join(" ", bf16.TrainLosses));

        // bf16 parameters under the plain AdamW would train without masters: refused, naming the key
        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(Config(start, tmp["d"], 2, "optimizer: { lr: 0.01 }", "bfloat16")));
        Assert.Contains("optimizer.offload", e.Message);
    }

    [Fact]
    public async Task Bf16_parameters_train_on_the_device_with_stochastic_rounding()
    {
        using var tmp = new TempDir();
        string start = SaveBase(tmp);
        var sr = await Run(Config(start, tmp["a"], 8, "optimizer: { lr: 0.01, stochastic_rounding: true, bf16_moments: true }", "bfloat16"));
        Assert.True(sr.TrainLosses.TakeLast(2).Average() < sr.TrainLosses.Take(2).Average() - 0.1, string.Join(" ", sr.TrainLosses));
        var state = SafeTensors.ReadHeader(tmp["a/step-000008/optimizer.safetensors"]);
        Assert.Contains("lm_head.weight.exp_avg", state.Keys);
        Assert.DoesNotContain("lm_head.weight.master", state.Keys);                 // no fp32 masters anywhere

        // it tracks the host optimizer's fp32-master run from the same start (same data and moments)
        var host = await Run(Config(start, tmp["b"], 8, "optimizer: { lr: 0.01, offload: host, bf16_moments: true }", "bfloat16"));
        for (int i = 0; i < 8; i++)
            Assert.InRange(sr.TrainLosses[i], host.TrainLosses[i] - 0.05, host.TrainLosses[i] + 0.05);

        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(Config(start, tmp["c"], 1, "optimizer: { lr: 0.01, stochastic_rounding: true }")));
        Assert.Contains("optimizer.stochastic_rounding", e.Message);
        Assert.Contains("bfloat16", e.Message);
        e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(Config(start, tmp["d"], 1, "optimizer: { lr: 0.01, stochastic_rounding: true, offload: host }", "bfloat16")));
        Assert.Contains("optimizer.stochastic_rounding", e.Message);
    }

    [Fact]
    public void Memory_plan_of_the_16b_shape_with_stochastic_rounding_fits_one_h200()
    {
        var cfg = ModelConfig.Load(RepoPaths.Of("benchmarks/moonlight-16b/config.json"));
        using var model = new DeepSeekForCausalLM(cfg, new Device("meta"));
        model.to(ScalarType.BFloat16);
        long n = model.parameters().Sum(p => p.numel());
        var plan = MemoryPlan.Of(model, model, new OptimizerConfig { StochasticRounding = true, Bf16Moments = true }, null);
        Assert.Equal((2 * n, 2 * n, 2 * 2 * n, 0L), (plan.ModelBytes, plan.GradientBytes, plan.OptimizerDeviceBytes, plan.HostBytes));
        Assert.InRange(plan.DeviceBytes / Math.Pow(2, 30), 118.9, 119.0);   // GiB of the H200's ~140: the rest for activations
    }

    [Fact]
    public async Task A_timing_run_without_checkpoints_still_reports_the_ema_timings()
    {
        using var tmp = new TempDir();
        string start = SaveBase(tmp);
        var cfg = Config(start, tmp["a"], 2, "ema: { decay: 0.5, every: 1 }\noptimizer: { lr: 0.01 }");
        cfg = cfg with { Checkpoint = cfg.Checkpoint with { Enabled = false } };
        var log = new StringWriter();
        Assert.Equal(0, await new SftRecipe(cfg).RunAsync(new RecipeContext("big.yaml", "", log), CancellationToken.None));
        Assert.Matches(@"ema: 2 updates \(decay 0\.5; copy on the training thread\); training thread: [0-9.]+ s copying or queuing the copy, [0-9.]+ s waiting; background: [0-9.]+ s waiting for the copy, [0-9.]+ s averaging \(not saved", log.ToString());
        Assert.False(Directory.Exists(tmp["a/ema"]));
    }
}
