// The training-run core (TrainingRun) through real recipes: a resume whose run-shaping config changed is refused
// (and allowed on request), leftovers of a killed save are removed, a Hugging Face BPE tokenizer travels with an SFT
// model into its checkpoints and final directory, trainer keys are unknown to recipes that do not train, and SGD's
// update is the hand-computed one.
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Data.Tokenizers.Hf;
using PostTrain.Training.Recipes;
using PostTrain.Training.Run;
using PostTrain.Training.Sft;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Run;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class TrainingRunTests
{
    private static async Task<(int Code, string Log)> Toy(string outputDir, params string[] overrides)
    {
        var log = new StringWriter();
        try
        {
            int code = await RecipeRunner.RunAsync("toy_regression",
                [$"output_dir={outputDir}", "logging.progress=plain", "logging.tensorboard=false", "scheduler.warmup_steps=1", .. overrides], log, CancellationToken.None);
            return (code, log.ToString());
        }
        catch (RecipeConfigException e)
        {
            return (2, e.Message);
        }
    }

    [Fact]
    public async Task Resume_with_a_changed_max_steps_is_refused_naming_the_key_unless_allowed()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, (await Toy(tmp.Path, "max_steps=6", "checkpoint.every_n_steps=3")).Code);

        var (code, message) = await Toy(tmp.Path, "max_steps=9", "optimizer.lr=0.01", "checkpoint.every_n_steps=3");
        Assert.Equal(2, code);
        Assert.Contains("max_steps: 6 -> 9", message);
        Assert.Contains("optimizer.lr: 0.05 -> 0.01", message);
        Assert.Contains("step-000006", message);
        Assert.DoesNotContain("checkpoint.every_n_steps", message);

        // keys that do not shape the run (logging, checkpointing) may change; so may anything when asked
        var quiet = await Toy(tmp.Path, "max_steps=6", "checkpoint.every_n_steps=2", "logging.every_n_steps=3");
        Assert.Equal(0, quiet.Code);
        var allowed = await Toy(tmp.Path, "max_steps=9", "checkpoint.every_n_steps=3", "checkpoint.allow_config_change=true");
        Assert.Equal(0, allowed.Code);
        Assert.Contains("resumed from", allowed.Log);
        Assert.Contains("step 9/9", allowed.Log);
    }

    [Fact]
    public void Config_changes_list_added_removed_and_nested_keys_but_not_free_ones()
    {
        const string saved = "recipe: sft\nmax_steps: 6\noptimizer:\n  lr: 0.1\n  betas: [0.9, 0.95]\nlogging:\n  every_n_steps: 1\nrewards:\n- {name: math, weight: 1}\n";
        const string now = "recipe: sft\nmax_steps: 6\noptimizer:\n  lr: 0.1\n  betas: [0.9, 0.99]\nlogging:\n  every_n_steps: 5\nrewards:\n- {name: math, weight: 2}\nseed: 3\n";
        Assert.Equal(["optimizer.betas: [0.9, 0.95] -> [0.9, 0.99]", "rewards: [{name: math, weight: 1}] -> [{name: math, weight: 2}]", "seed: (absent) -> 3"],
            ResumeCheck.Changes(saved, now));
    }

    [Fact]
    public async Task A_run_removes_the_leftovers_of_a_killed_save_and_only_those()
    {
        using var tmp = new TempDir();
        string hex = Guid.NewGuid().ToString("N");
        Directory.CreateDirectory(tmp[$".final.tmp-{hex}"]);                    // a final-model save killed midway
        File.WriteAllText(tmp[$".final.tmp-{hex}/model.safetensors"], "partial");
        Directory.CreateDirectory(tmp[$".final.old-{Guid.NewGuid():N}"]);
        File.WriteAllText(tmp[$"metrics.jsonl.tmp-{Guid.NewGuid():N}"], "partial");
        Directory.CreateDirectory(tmp[".final.tmp-mine"]);                       // not a name our writers make
        File.WriteAllText(tmp["notes.txt"], "kept");

        Assert.Equal(0, (await Toy(tmp.Path, "max_steps=2")).Code);
        var names = Directory.EnumerateFileSystemEntries(tmp.Path).Select(Path.GetFileName).ToList();
        Assert.DoesNotContain(names, n => n!.Contains(hex) || n.StartsWith(".final.old-") || n.StartsWith("metrics.jsonl.tmp-"));
        Assert.Contains(".final.tmp-mine", names);
        Assert.Contains("notes.txt", names);
    }

    [Fact]
    public async Task Sft_from_a_model_with_a_bpe_tokenizer_saves_that_tokenizer_with_every_model()
    {
        using var tmp = new TempDir();
        string fixture = RepoPaths.Of("tests/PostTrain.Data.Tests/Fixtures/bpe");
        var tokenizerFiles = new[] { "tokenizer.json", "tokenizer_config.json" }
            .ToDictionary(f => f, f => File.ReadAllText(Path.Combine(fixture, f)));
        string start = tmp["start"];
        using (var model = new DeepSeekForCausalLM(BuiltinModels.Micro(vocabSize: 800)))
        {
            model.InitWeights(0.02, 1);
            PretrainedModel.Save(model, start, extraFiles: tokenizerFiles);
        }
        var cfg = RecipeDocument.FromText($"""
            recipe: sft
            output_dir: {tmp["run"]}
            max_steps: 2
            model: {"{"} path: {start}, dtype: float32, device: cpu {"}"}
            data: {"{"} path: {RepoPaths.Of("datasets/arithmetic/test.parquet")}, max_seq_len: 128, batch_size: 2 {"}"}
            scheduler: {"{"} warmup_steps: 1 {"}"}
            checkpoint: {"{"} every_n_steps: 1, keep_last: 1 {"}"}
            logging: {"{"} tensorboard: false, progress: plain {"}"}
            """, "test.yaml", []).Bind<SftConfig>();
        Assert.Equal(0, await new SftRecipe(cfg).RunAsync(new RecipeContext("test.yaml", "", TextWriter.Null), CancellationToken.None));

        foreach (var dir in new[] { tmp["run/final"], tmp["run/step-000002/model"] })
        {
            foreach (var (name, text) in tokenizerFiles) Assert.Equal(text, File.ReadAllText(Path.Combine(dir, name)));
            var loaded = ModelSetup.Load(new ModelConfigSection { Path = dir, Dtype = DTypeName.Float32, Device = "cpu" }, 0, TextWriter.Null);
            using var _ = loaded.Model;
            Assert.IsType<HfBpeTokenizer>(loaded.Tokenizer);
            Assert.Equal(dir, loaded.TokenizerDir);
        }
    }

    [Theory]
    [InlineData("max_steps=7", "max_steps")]
    [InlineData("optimizer.lr=5", "optimizer")]
    [InlineData("checkpoint.every_n_steps=5", "checkpoint")]
    public void Distill_rejects_trainer_keys(string overrideText, string key)
    {
        var e = Assert.Throws<RecipeConfigException>(() => RecipeRunner.Resolve(RepoPaths.Of("recipes/distill-quickstart.yaml"), [overrideText]));
        Assert.Contains($"{key}: unknown key", e.Message);
    }

    [Fact]
    public void Sgd_steps_by_hand_computed_values_and_skips_parameters_without_gradients()
    {
        var w = new TorchSharp.Modules.Parameter(tensor(new[] { 1.0f, -2.0f }));
        var frozen = new TorchSharp.Modules.Parameter(tensor(new[] { 3.0f }));
        w.grad = tensor(new[] { 0.5f, 0.25f });
        using var sgd = new Sgd([w, frozen], lr: 0.1, weightDecay: 0.2);
        sgd.Step();
        // p -= lr * (g + wd * p): 1 - 0.1 * (0.5 + 0.2) = 0.93; -2 - 0.1 * (0.25 - 0.4) = -1.985
        Assert.Equal(new[] { 0.93f, -1.985f }, w.data<float>().ToArray(), new FloatTolerance(1e-6f));
        Assert.Equal(3.0f, frozen.data<float>()[0]);
        Assert.Empty(sgd.StateDict());
    }

    private sealed class FloatTolerance(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float x) => 0;
    }
}
