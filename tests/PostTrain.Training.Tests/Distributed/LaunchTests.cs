// `posttrain launch` as a user types it: 2 ranks of the shipped SFT quickstart (3 steps, micro model) finish with
// exit 0 and rank 0's outputs; a run whose ranks fail (missing data file) exits non-zero naming a failed rank.
namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class LaunchTests
{
    private static (int, string) Launch(string workDir, params string[] args)
    {
        Assert.True(File.Exists(MpiRun.Mpirun), $"{MpiRun.Mpirun} not found: run scripts/ci/install-openmpi.sh");
        var psi = new System.Diagnostics.ProcessStartInfo(MpiRun.Cli) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workDir };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(180_000), "posttrain launch did not finish in 180 s");
        return (p.ExitCode, output + err.Result);
    }

    [Fact]
    public void LaunchRunsTheQuickstartOnTwoRanks()
    {
        string dir = Path.Combine(Path.GetTempPath(), "posttrain-launch-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var (rc, output) = Launch(dir, "launch", "--nproc-per-node", "2", "run", RepoPaths.Of("recipes/sft-quickstart.yaml"), "max_steps=3",
            "model.path=micro-moe", "scheduler.warmup_steps=1", "data.eval_path=null", "logging.tensorboard=false", "logging.progress=plain",
            $"data.path={RepoPaths.Of("datasets/arithmetic/train.parquet")}", "output_dir=run");
        Assert.True(rc == 0, output);
        Assert.Contains("launch: 2 ranks via mpirun", output);
        Assert.Single(output.Split('\n'), l => l.StartsWith("recipe: sft", StringComparison.Ordinal));   // rank 0 alone prints
        Assert.Equal(3, DataParallelSftTests.Losses(Path.Combine(dir, "run")).Length);
        Assert.True(File.Exists(Path.Combine(dir, "run", "final", "model.safetensors")));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void FailingRanksEndTheLaunchNonZeroAndAreNamed()
    {
        string dir = Path.Combine(Path.GetTempPath(), "posttrain-launch-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var (rc, output) = Launch(dir, "launch", "--nproc-per-node", "2", "--timeout", "30", "run", RepoPaths.Of("recipes/sft-quickstart.yaml"),
            "data.path=missing.parquet", "output_dir=run");
        Assert.Equal(2, rc);
        Assert.Contains("missing.parquet", output);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(output, @"launch: rank [01](, [01])? failed or aborted the job"), output);
        Directory.Delete(dir, true);
    }
}
