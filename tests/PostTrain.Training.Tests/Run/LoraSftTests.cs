// SFT with LoRA through the training-run core: only the adapters are trained and saved (PEFT directories for every
// checkpoint and the final model), a stopped and resumed run equals an uninterrupted one, an adapter directory loads as
// its base with the adapter folded in (the target weights moved, nothing else), and `posttrain merge` writes that model.
using PostTrain.Cli;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Training.Recipes;
using PostTrain.Training.Sft;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Run;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class LoraSftTests
{
    private static SftConfig Config(string start, string outDir, long maxSteps) => RecipeDocument.FromText($"""
        recipe: sft
        output_dir: {outDir}
        seed: 3
        max_steps: {maxSteps}
        mtp_lambda: 0
        model: {"{"} path: {start}, dtype: float32, device: cpu {"}"}
        data: {"{"} path: {RepoPaths.Of("datasets/arithmetic/test.parquet")}, max_seq_len: 128, batch_size: 4 {"}"}
        lora: {"{"} rank: 4, alpha: 8, dropout: 0.0, target_modules: [q_a_proj, q_b_proj, kv_b_proj, o_proj] {"}"}
        optimizer: {"{"} lr: 0.02, weight_decay: 0.0 {"}"}
        scheduler: {"{"} name: constant, warmup_steps: 0 {"}"}
        checkpoint: {"{"} every_n_steps: 3, keep_last: 2 {"}"}
        logging: {"{"} tensorboard: false, progress: plain {"}"}
        """, "lora.yaml", []).Bind<SftConfig>();

    private static async Task<SftRecipe> Run(SftConfig cfg)
    {
        var recipe = new SftRecipe(cfg);
        Assert.Equal(0, await recipe.RunAsync(new RecipeContext("lora.yaml", "", TextWriter.Null), CancellationToken.None));
        return recipe;
    }

    [Fact]
    public async Task Lora_sft_trains_and_saves_only_adapters_resumes_exactly_and_merges()
    {
        using var tmp = new TempDir();
        string start = tmp["base"];
        using (var m = new DeepSeekForCausalLM(BuiltinModels.Micro()))
        {
            m.InitWeights(0.02, 1);
            PretrainedModel.Save(m, start);
        }
        var full = await Run(Config(start, tmp["a"], 12));
        Assert.True(full.TrainLosses.TakeLast(3).Average() < full.TrainLosses.Take(3).Average() - 0.2,
            string.Join(" ", full.TrainLosses.Select(l => l.ToString("F3"))));

        // checkpoints and the final model are adapter directories holding only lora_A / lora_B tensors
        foreach (var dir in new[] { tmp["a/final"], tmp["a/step-000012/model"] })
        {
            Assert.True(PeftAdapterFiles.IsAdapterDir(dir), dir);
            var keys = SafeTensors.Load(Path.Combine(dir, PeftAdapterFiles.WeightsFileName)).Keys.ToList();
            Assert.Equal(2 * 4 * 2, keys.Count);          // 2 layers x 4 target modules x (A, B)
            Assert.All(keys, k => Assert.Matches(@"^base_model\.model\.model\.layers\.\d\.self_attn\.(q_a_proj|q_b_proj|kv_b_proj|o_proj)\.lora_[AB]\.weight$", k));
        }

        // stopped at 6 and resumed to 12: the same losses and adapter
        await Run(Config(start, tmp["b"], 6));
        var resumed = await Run(Config(start, tmp["b"], 12));
        Assert.Equal(full.TrainLosses.Skip(6), resumed.TrainLosses);
        Assert.Equal(File.ReadAllBytes(tmp["a/final/adapter_model.safetensors"]), File.ReadAllBytes(tmp["b/final/adapter_model.safetensors"]));

        // an adapter directory loads as its base with the adapter folded in: target weights moved, nothing else did
        var folded = ModelSetup.Load(new ModelConfigSection { Path = tmp["a/final"], Dtype = DTypeName.Float32, Device = "cpu" }, 0, TextWriter.Null).Model;
        var (original, _) = PretrainedModel.Load(start);
        var basis = original.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in folded.named_parameters())
        {
            bool target = name.StartsWith("model.layers.") && name.Contains("self_attn.") && new[] { "q_a_proj", "q_b_proj", "kv_b_proj", "o_proj" }.Any(t => name.Contains($".{t}."));
            bool same = p.detach().eq(basis[name]).all().item<bool>();
            Assert.True(target ? !same : same, $"{name}: {(target ? "unchanged" : "changed")}");
        }

        // posttrain merge writes that folded model as a full checkpoint
        var err = new StringWriter();
        Assert.Equal(0, await CliApp.RunAsync(["merge", "--adapter", tmp["a/final"], "--output", tmp["merged"]], TextWriter.Null, err));
        var (merged, _) = PretrainedModel.Load(tmp["merged"]);
        var ids = tensor(new long[] { 12, 40, 99, 7 }).view(1, -1);
        using (no_grad())
            Assert.True((merged.Forward(ids).Logits - folded.Forward(ids).Logits).abs().max().item<float>() < 1e-6);
        Assert.Equal(CliApp.BadUsage, await CliApp.RunAsync(["merge", "--adapter", start, "--output", tmp["x"]], TextWriter.Null, err));
        Assert.Contains("adapter_config.json not found", err.ToString());
    }
}
