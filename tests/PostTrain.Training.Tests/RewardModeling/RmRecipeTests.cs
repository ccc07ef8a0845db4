// The rm recipe end to end on the CPU: a random-init Micro reward model learns an easy synthetic preference (the
// chosen answer ends in "?" and the rejected one in "!", the rest identical) to high held-out accuracy in a fixed
// number of seeded steps; a stopped and resumed run repeats the uninterrupted one exactly; bad data is an error
// naming the file, row and column; the shipped recipes/rm.yaml binds and runs from tiny-moe.
using System.Text.Json;
using PostTrain.Core.Model;
using PostTrain.Data;
using PostTrain.Training.Recipes;
using PostTrain.Training.RewardModeling;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;

namespace PostTrain.Training.Tests.RewardModeling;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class RmRecipeTests
{
    /// <summary>Pairs whose answers share random lowercase words and differ only in the last character: chosen ends
    /// in "?", rejected in "!". (With seed 7 the untrained model happens to prefer "!" on every pair, so training has
    /// to turn a held-out accuracy of 0 around.)</summary>
    static void WritePairs(string path, int rows, int seed)
    {
        var rng = new Random(seed);
        string Word() => new(Enumerable.Range(0, rng.Next(2, 6)).Select(_ => (char)('a' + rng.Next(26))).ToArray());
        var lines = Enumerable.Range(0, rows).Select(_ =>
        {
            string prompt = $"{Word()} {Word()}", body = $"{Word()} {Word()} {Word()}";
            return JsonSerializer.Serialize(new { prompt, chosen = body + "?", rejected = body + "!" });
        });
        File.WriteAllLines(path, lines);
    }

    static RmConfig Config(TempDir tmp, long maxSteps, string run = "run", string extra = "") => RecipeDocument.FromText($"""
        recipe: rm
        output_dir: {tmp[run]}
        seed: 7
        max_steps: {maxSteps}
        center_rewards_coefficient: 0.01
        model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
        data:
          path: {tmp["train.jsonl"]}
          chat_template: plain
          max_seq_len: 64
          batch_size: 16
          eval_path: {tmp["test.jsonl"]}
          eval_every_n_steps: 20
        {extra}
        optimizer: {"{"} lr: 0.003, weight_decay: 0.0 {"}"}
        scheduler: {"{"} name: constant, warmup_steps: 2 {"}"}
        checkpoint: {"{"} every_n_steps: 3, keep_last: 2, resume: true {"}"}
        logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 1000 {"}"}
        """, "test.yaml", []).Bind<RmConfig>();

    static async Task<RmRecipe> Run(RmConfig cfg)
    {
        var recipe = new RmRecipe(cfg);
        Assert.Equal(0, await recipe.RunAsync(new RecipeContext("test.yaml", "", TextWriter.Null), CancellationToken.None));
        return recipe;
    }

    static TempDir Data()
    {
        var tmp = new TempDir();
        WritePairs(tmp["train.jsonl"], 240, 1);
        WritePairs(tmp["test.jsonl"], 60, 2);
        return tmp;
    }

    [Fact]
    public async Task LearnsAnEasyPreferenceToHighHeldOutAccuracy()
    {
        using var tmp = Data();
        var r = await Run(Config(tmp, 40));
        var (first, last) = (r.Evals[0].Metrics, r.Evals[^1].Metrics);
        Console.WriteLine($"rm learning test: held-out accuracy {first.Accuracy:P1} -> {last.Accuracy:P1}, margin {first.Margin:F3} -> {last.Margin:F3}");
        Assert.Equal(60, last.Pairs);
        Assert.True(first.Accuracy < 0.2, $"the untrained model prefers the rejected answers, got {first.Accuracy}");
        Assert.True(last.Accuracy >= 0.9, $"held-out accuracy {first.Accuracy} -> {last.Accuracy}: {string.Join(", ", r.Evals.Select(e => e.Metrics.Accuracy))}");
        Assert.True(last.Margin > first.Margin + 0.5, $"margin {first.Margin} -> {last.Margin}");
        Assert.True(last.Loss < 0.4, $"held-out loss {first.Loss} -> {last.Loss}");
        // the final directory is a reward model that scores the held-out pairs as the recipe did
        using var rm = RewardModelFiles.Load(tmp["run/final"]);
        Assert.True(File.Exists(tmp["run/metrics.jsonl"]));
        Assert.Contains("\"eval/accuracy\"", File.ReadAllText(tmp["run/metrics.jsonl"]));
    }

    [Fact]
    public async Task AStoppedAndResumedRunRepeatsTheUninterruptedOneExactly()
    {
        using var tmp = Data();
        var full = await Run(Config(tmp, 6, "a"));
        var first = await Run(Config(tmp, 3, "b"));
        var resumed = await Run(Config(tmp, 6, "b"));
        Assert.Equal(full.TrainLosses, first.TrainLosses.Concat(resumed.TrainLosses).ToList());
        Assert.Equal(File.ReadAllBytes(tmp["a/final/model.safetensors"]), File.ReadAllBytes(tmp["b/final/model.safetensors"]));
    }

    [Fact]
    public async Task AMissingColumnNamesTheFileRowAndColumn()
    {
        using var tmp = Data();
        File.AppendAllText(tmp["train.jsonl"], "{\"prompt\": \"p\", \"chosen\": \"a?\", \"wrong\": \"a!\"}\n");
        var e = await Assert.ThrowsAsync<DataException>(() => Run(Config(tmp, 1)));
        Assert.Contains(tmp["train.jsonl"], e.Message);
        Assert.Contains("line 241", e.Message);
        Assert.Equal("rejected", e.Column);

        // renamed columns are read through data.columns, and a margin column must be present when asked for
        using var renamed = new TempDir();
        File.WriteAllLines(renamed["train.jsonl"], ["{\"q\": \"p\", \"good\": \"a!\", \"bad\": \"a?\", \"m\": 0.5}", "{\"q\": \"p\", \"good\": \"b!\", \"bad\": \"b?\"}"]);
        var cfg = Config(renamed, 1) with { Data = Config(renamed, 1).Data with
        {
            EvalPath = null, MarginColumn = "m",
            Columns = new() { ["prompt"] = "q", ["chosen"] = "good", ["rejected"] = "bad" },
        } };
        var m = await Assert.ThrowsAsync<DataException>(() => Run(cfg));
        Assert.Contains("line 2", m.Message);
        Assert.Equal("m", m.Column);
    }

    [Fact]
    public async Task PairsLongerThanMaxSeqLenAreDroppedAndCounted()
    {
        using var tmp = Data();
        var template = PostTrain.Data.Templates.ChatTemplates.Resolve("plain", PostTrain.Data.Tokenizers.ByteTokenizer.Instance);
        var cfg = Config(tmp, 1).Data;
        var all = new PreferencePairs(tmp["train.jsonl"], cfg with { MaxSeqLen = 1000 }, template);
        int limit = all.Items.Select(p => Math.Max(p.Chosen.Length, p.Rejected.Length)).Order().ElementAt(120);
        var cut = new PreferencePairs(tmp["train.jsonl"], cfg with { MaxSeqLen = limit }, template);
        int expectedDropped = all.Items.Count(p => Math.Max(p.Chosen.Length, p.Rejected.Length) > limit);
        Assert.True(expectedDropped > 0);
        Assert.Equal(expectedDropped, cut.DroppedTooLong);
        Assert.Equal(all.Items.Count - expectedDropped, cut.Items.Count);
        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(Config(tmp, 1) with { Data = cfg with { MaxSeqLen = 3 } }));
        Assert.Contains("no usable pairs", e.Message);
    }

    [Fact]
    public async Task ShippedRecipeBindsAndRunsFromTinyMoe()
    {
        using var tmp = new TempDir();
        var doc = RecipeDocument.FromFile(RepoPaths.Of("recipes/rm.yaml"), [
            $"output_dir={tmp["run"]}", "model.path=tiny-moe", "model.device=cpu", "max_steps=2", "scheduler.warmup_steps=1",
            $"data.path={RepoPaths.Of("datasets/preferences/train.parquet")}", $"data.eval_path={RepoPaths.Of("datasets/preferences/test.parquet")}",
            "data.eval_pairs=16", "logging.tensorboard=false", "logging.progress=plain"]);
        var cfg = doc.Bind<RmConfig>();
        Assert.Equal("runs/sft-quickstart/final", RecipeDocument.FromFile(RepoPaths.Of("recipes/rm.yaml"), []).Bind<RmConfig>().Model.Path);
        var r = await Run(cfg);
        Assert.Equal([0L, 2L], r.Evals.Select(e => e.Step));
        Assert.Equal(16, r.Evals[0].Metrics.Pairs);
        Assert.True(RewardModelFiles.IsRewardModelDir(tmp["run/final"]));
    }
}
