using PostTrain.Core.Model;
using PostTrain.Data;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Recipes;
using PostTrain.Training.Sft;
using PostTrain.Training.Tests.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Sft;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class SftRecipeTests
{
    static string Repo(string rel) => RepoPaths.Of(rel);

    static SftConfig Config(string outDir, long maxSteps, bool packed = true, long every = 3) =>
        RecipeDocument.FromText($"""
            recipe: sft
            output_dir: {outDir}
            seed: 7
            max_steps: {maxSteps}
            mtp_lambda: 0.3
            model: {"{"} path: micro-moe, dtype: float32, device: cpu {"}"}
            data:
              path: {Repo("datasets/arithmetic/train.parquet")}
              max_seq_len: 256
              batch_size: 4
              packed: {(packed ? "true" : "false")}
              eval_path: {Repo("datasets/arithmetic/test.parquet")}
              eval_every_n_steps: 100
              eval_batches: 2
            optimizer: {"{"} lr: 0.003, weight_decay: 0.01 {"}"}
            scheduler: {"{"} name: cosine, warmup_steps: 2, min_lr: 0.0003 {"}"}
            checkpoint: {"{"} every_n_steps: {every}, keep_last: 2, resume: true {"}"}
            logging: {"{"} tensorboard: false, progress: plain, plain_interval_seconds: 100 {"}"}
            """, "test.yaml", []).Bind<SftConfig>();

    static async Task<SftRecipe> Run(SftConfig cfg)
    {
        var recipe = new SftRecipe(cfg);
        var ctx = new RecipeContext("test.yaml", "", TextWriter.Null);
        Assert.Equal(0, await recipe.RunAsync(ctx, CancellationToken.None));
        return recipe;
    }

    static string Temp() => Path.Combine(Path.GetTempPath(), "posttrain-sft-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task AStoppedAndResumedRunRepeatsTheUninterruptedLossCurveExactly()
    {
        string a = Temp(), b = Temp();
        var full = await Run(Config(a, 6));
        var first = await Run(Config(b, 3));                      // stops at step 3 (checkpoint at 3)
        var resumed = await Run(Config(b, 6));                    // resumes from step 3
        var curve = first.TrainLosses.Concat(resumed.TrainLosses).ToList();
        Assert.Equal(6, curve.Count);
        Assert.Equal(full.TrainLosses, curve);                    // bit-identical doubles
        // the final models are identical too
        var fa = File.ReadAllBytes(Path.Combine(a, "final", "model.safetensors"));
        var fb = File.ReadAllBytes(Path.Combine(b, "final", "model.safetensors"));
        Assert.Equal(fa, fb);
        // learning happened: eval loss fell from the start
        Assert.True(full.EvalLosses[^1].Loss < full.EvalLosses[0].Loss - 0.5, string.Join(", ", full.EvalLosses));
        Assert.True(File.Exists(Path.Combine(a, "metrics.jsonl")));
        Directory.Delete(a, true); Directory.Delete(b, true);
    }

    [Fact]
    public void PackedAndUnpackedBatchesGiveTheSameLossPerExample()
    {
        var tok = ByteTokenizer.Instance;
        string path = Repo("datasets/arithmetic/test.parquet");
        var dataCfg = Config("unused", 1).Data with { Shuffle = false, BatchSize = 64 };
        var packed = new SftBatches(dataCfg with { Packed = true }, tok, new DataStats()).Epoch(path, 1, 0, false).First();
        var unpacked = new SftBatches(dataCfg with { Packed = false }, tok, new DataStats()).Epoch(path, 1, 0, false).Take(1).ToList();
        var model = new DeepSeekForCausalLM(BuiltinModels.Micro());
        model.InitWeights(0.1, 3);
        model.eval();
        using var _ = no_grad();

        // per-example loss sums, keyed by the example's token sequence
        Dictionary<string, double> PerExample(SftBatch batch)
        {
            var result = new Dictionary<string, double>();
            foreach (var row in batch.Rows)
            {
                var ids = tensor(row.InputIds.Select(i => (long)i).ToArray()).view(1, -1);
                var pos = tensor(row.PositionIds.Select(i => (long)i).ToArray()).view(1, -1);
                var seg = tensor(row.SequenceIds.Select(i => (long)i).ToArray()).view(1, -1);
                var logp = model.Forward(ids, pos, new PostTrain.Core.Model.AttentionMask(SegmentIds: seg)).Logits.log_softmax(-1)[0];
                for (int s = 0; s <= row.SequenceIds.Max(); s++)
                {
                    double loss = 0;
                    var key = new System.Text.StringBuilder();
                    for (int t = 0; t < row.Length; t++)
                    {
                        if (row.SequenceIds[t] != s) continue;
                        key.Append(row.InputIds[t]).Append(',');
                        if (row.Labels[t] != -100) loss -= logp[t, row.Labels[t]].item<float>();
                    }
                    result[key.ToString()] = loss;
                }
            }
            return result;
        }
        var p = PerExample(packed);
        var u = unpacked.SelectMany(b => PerExample(b)).ToDictionary(kv => kv.Key, kv => kv.Value);
        int compared = 0;
        foreach (var (key, loss) in p)
        {
            if (!u.TryGetValue(key, out var other)) continue;
            Assert.Equal(other, loss, 3);
            compared++;
        }
        Assert.True(compared >= 10, $"only {compared} examples in both");
        Assert.True(packed.Rows.Sum(r => r.SequenceIds.Max() + 1) > packed.Rows.Count);   // several examples per row
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheFirstStepsLossIsTheMeanOverEveryRowsTargets(bool packed)
    {
        // Rows of a batch have different real lengths (unpacked examples of different sizes; packed rows ending in
        // different amounts of padding), and the step must see every row whole, whatever the first row's length: the
        // logged loss of step 1 (before any update) equals the token mean of the cross-entropy of each row computed on
        // its own, from the same starting weights.
        string dir = Temp(), start = Path.Combine(Temp(), "base");
        using (var m = new DeepSeekForCausalLM(BuiltinModels.Micro()))
        {
            m.InitWeights(0.1, 5);
            PostTrain.Core.Model.PretrainedModel.Save(m, start);
        }
        var cfg = Config(dir, 3, packed) with { MtpLambda = 0 };
        cfg = cfg with { Model = cfg.Model with { Path = start } };
        cfg = cfg with { Data = cfg.Data with { Shuffle = false, MaxSeqLen = 640 } };
        var recipe = await Run(cfg);

        var batch = new SftBatches(cfg.Data, ByteTokenizer.Instance, new DataStats()).Epoch(cfg.Data.Path, cfg.Seed, 0, false).First();
        Assert.True(batch.Rows.Select(r => r.Length).Distinct().Count() > 1, "the rows' real lengths should differ");
        var (model, _) = PostTrain.Core.Model.PretrainedModel.Load(start);
        model.eval();
        using var _ = no_grad();
        double sum = 0;
        long targets = 0;
        foreach (var row in batch.Rows)
        {
            var ids = tensor(row.InputIds.Select(i => (long)i).ToArray()).view(1, -1);
            var pos = tensor(row.PositionIds.Select(i => (long)i).ToArray()).view(1, -1);
            var seg = tensor(row.SequenceIds.Select(i => (long)i).ToArray()).view(1, -1);
            var logp = model.Forward(ids, pos, new PostTrain.Core.Model.AttentionMask(SegmentIds: seg)).Logits.log_softmax(-1)[0].to(ScalarType.Float64);
            for (int t = 0; t < row.Labels.Length; t++)
                if (row.Labels[t] != -100) { sum -= logp[t, row.Labels[t]].item<double>(); targets++; }
        }
        Assert.Equal(sum / targets, recipe.TrainLosses[0], 4);
        Directory.Delete(dir, true);
        Directory.Delete(Path.GetDirectoryName(start)!, true);
    }

    [Fact]
    public async Task AMissingColumnNamesTheFileAndRow()
    {
        string dir = Temp();
        Directory.CreateDirectory(dir);
        string bad = Path.Combine(dir, "bad.jsonl");
        File.WriteAllText(bad, "{\"prompt\": \"1+1?\", \"completion\": \"2\"}\n{\"prompt\": \"2+2?\"}\n");
        var cfg = Config(Path.Combine(dir, "run"), 3) with { Data = Config(dir, 3).Data with { Path = bad, EvalPath = null, Shuffle = false, BatchSize = 1 } };
        var e = await Assert.ThrowsAsync<DataException>(() => Run(cfg));
        Assert.Contains("bad.jsonl", e.Message);
        Assert.Contains("line 2", e.Message);
        Assert.Contains("completion", e.Message);
        // skip_bad_rows: the run goes on
        var ok = cfg with { Data = cfg.Data with { SkipBadRows = true }, OutputDir = Path.Combine(dir, "run2") };
        await Run(ok);
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task AnEmptyTrainingFileIsAnErrorCountingItsOwnRows()
    {
        // The eval split (200 rows, read first for the step-0 eval) must not be counted as training rows.
        string dir = Temp();
        Directory.CreateDirectory(dir);
        string empty = Path.Combine(dir, "empty.jsonl");
        File.WriteAllText(empty, "");
        var cfg = Config(Path.Combine(dir, "run"), 3) with { Data = Config(dir, 3).Data with { Path = empty, Shuffle = false } };
        var e = await Assert.ThrowsAsync<RecipeConfigException>(() => Run(cfg));
        Assert.Contains("empty.jsonl' gave no training rows (rows 0, skipped 0", e.Message);
        Directory.Delete(dir, true);
    }
}
