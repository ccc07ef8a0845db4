// Data-parallel reward-model training through the CLI: `posttrain run recipes/rm.yaml` (micro model, 6 pairs a
// step, 4 steps) as one process and as 2 ranks (3 pairs each): per-step losses and accuracies (computed from the
// gathered scores) and gradient norms equal to 1e-5 relative (measured <= 3.5e-6; the margin, a difference of
// rewards, to 2e-6 absolute). Final weights only to 1e-3 by the norm of the difference: measured 1.1e-4 on
// layers.0.mlp.down_proj (3.6e-6 on the embedding), because AdamW's first steps move every element by ~lr * sign(g),
// so an element whose summed gradient is ~0 (fp32 rounding of a different summation order decides its sign) moves
// by up to 2 lr between the runs.
using PostTrain.Core.Checkpoints;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class DataParallelRmTests
{
    private static (int, string) Rm(int ranks, string dir)
    {
        string[] args =
        [
            "run", RepoPaths.Of("recipes/rm.yaml"), $"output_dir={dir}", "max_steps=4", "model.path=micro-moe", "model.device=cpu",
            "data.batch_size=6", "data.eval_path=null", "scheduler.warmup_steps=1", "checkpoint.every_n_steps=0",
            "logging.tensorboard=false", "logging.progress=plain", $"data.path={RepoPaths.Of("datasets/preferences/train.parquet")}",
        ];
        return ranks > 1 ? MpiRun.Run(ranks, MpiRun.Cli, args) : MpiRun.RunSingle(MpiRun.Cli, args);
    }

    private static double[] Column(string dir, string key) =>
        File.ReadLines(Path.Combine(dir, "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty(key, out _)).Select(e => e.GetProperty(key).GetDouble()).ToArray();

    [Fact]
    public void TwoRanksEqualOneProcess()
    {
        string root = Path.Combine(Path.GetTempPath(), "posttrain-dp-rm-" + Guid.NewGuid().ToString("N"));
        var (rc1, out1) = Rm(1, Path.Combine(root, "one"));
        Assert.True(rc1 == 0, out1);
        var (rc2, out2) = Rm(2, Path.Combine(root, "two"));
        Assert.True(rc2 == 0, out2);
        // margin (mean chosen - rejected reward) cancels, so it is compared absolutely: fp32 rewards near 1 summed in
        // another order differ by a few ulp (1.2e-7 each; measured 3e-7 on the shipped pairs), while a wrong shard or a
        // missing reduction moves it by orders more; loss, accuracy and grad norm relatively (1e-5)
        foreach (var key in new[] { "loss", "accuracy", "margin", "grad_norm" })
        {
            var (a, b) = (Column(Path.Combine(root, "one"), key), Column(Path.Combine(root, "two"), key));
            Assert.Equal(4, a.Length);
            Assert.Equal(a.Length, b.Length);
            for (int i = 0; i < a.Length; i++)
                Assert.True(Math.Abs(a[i] - b[i]) <= (key == "margin" ? 2e-6 : 1e-5 * Math.Abs(a[i])), $"{key} at step {i + 1}: {b[i]:R} vs one process {a[i]:R}");
        }
        using var scope = NewDisposeScope();
        var e = SafeTensors.Load(Path.Combine(root, "one", "final"));
        var w = SafeTensors.Load(Path.Combine(root, "two", "final"));
        foreach (var (name, t) in e)
        {
            double diff = (w[name].to(ScalarType.Float64) - t.to(ScalarType.Float64)).norm().item<double>();
            double norm = Math.Max(t.to(ScalarType.Float64).norm().item<double>(), 1e-12);
            Assert.True(diff <= 1e-3 * norm, $"{name}: ||difference|| {diff:E2}, relative {diff / norm:E2}");
        }
        Directory.Delete(root, true);
    }
}
