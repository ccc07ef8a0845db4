// toy_regression does not shard its batches, so a multi-rank run would sum every rank's full-batch gradient: it stops
// at setup with a config error naming the recipe and the recipes that do run data parallel, and mpirun exits non-zero.
using PostTrain.Training.Tests.Infra;

namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class DataParallelRefusalTests
{
    [Fact]
    public void ToyRegressionRefusesSeveralRanks()
    {
        using var tmp = new TempDir();
        var (rc, output) = MpiRun.RunCli(2, ["run", RepoPaths.Of("recipes/toy_regression.yaml"), $"output_dir={tmp["run"]}", "max_steps=2"]);
        Assert.True(rc != 0, output);
        Assert.Contains("recipe toy_regression: data-parallel runs (2 ranks) are supported by sft, rm and grpo", output);
    }
}
