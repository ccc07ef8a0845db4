// A rank killed (SIGKILL: no exception, no exit code of its own, no MPI_Abort) in the middle of data-parallel training
// started by `posttrain launch`: every rank ends, the launcher exits non-zero and names rank 1. (A rank that throws and
// one that hangs in a collective: CollectiveTests.) The rank's process is found by its Open MPI rank variable and the
// run's unique output directory on its command line.
using System.Diagnostics;

namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class KilledRankTests
{
    [Fact]
    public void AKilledRankEndsEveryRankAndTheLauncherNamesIt()
    {
        Assert.True(File.Exists(MpiRun.Mpirun), $"{MpiRun.Mpirun} not found: run scripts/ci/install-openmpi.sh");
        string dir = Path.Combine(Path.GetTempPath(), "posttrain-killed-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var psi = new ProcessStartInfo(MpiRun.Cli) { WorkingDirectory = dir };
        foreach (var a in new[] { "launch", "--nproc-per-node", "2", "--timeout", "30", "run", RepoPaths.Of("recipes/sft-quickstart.yaml"),
            "max_steps=1000", "model.path=micro-moe", "data.eval_path=null", "logging.tensorboard=false", "logging.progress=plain",
            "checkpoint.every_n_steps=0", $"data.path={RepoPaths.Of("datasets/arithmetic/train.parquet")}", $"output_dir={dir}/run" })
            psi.ArgumentList.Add(a);
        using var p = MpiRun.StartCapturing(psi, out var output);
        try
        {
            string metrics = Path.Combine(dir, "run", "metrics.jsonl");
            var sw = Stopwatch.StartNew();
            while (!(File.Exists(metrics) && new FileInfo(metrics).Length > 0))   // training is under way
            {
                Assert.False(p.HasExited, $"the launch ended before training started:\n{output}");
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(120), $"no training step within 120 s:\n{output}");
                Thread.Sleep(200);
            }
            int rank1 = RankProcess(1, dir);
            Process.GetProcessById(rank1).Kill();                                     // SIGKILL
            Assert.True(p.WaitForExit(120_000), $"the launch did not end within 120 s of the kill:\n{output}");
            p.WaitForExit();
            Assert.NotEqual(0, p.ExitCode);
            lock (output)
            {
                // rank 1 is named (rank 0 too if its own abort line got out before mpirun ended it)
                Assert.Matches(@"launch: rank (0, )?1 failed or aborted the job", output.ToString());
                Assert.DoesNotContain("final model:", output.ToString());
            }
            Assert.Empty(RankProcesses(dir));                                          // no rank left behind
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            Directory.Delete(dir, true);
        }
    }

    private static int RankProcess(int rank, string dir) =>
        RankProcesses(dir).Where(x => x.Rank == rank).Select(x => x.Pid).DefaultIfEmpty(-1).First() is int pid and > 0 ? pid
            : throw new Xunit.Sdk.XunitException($"no process of rank {rank} found for {dir}");

    /// <summary>Processes whose command line names the run directory and whose environment gives an Open MPI rank.</summary>
    private static List<(int Pid, int Rank)> RankProcesses(string dir)
    {
        var found = new List<(int, int)>();
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out int pid)) continue;
            try
            {
                if (!File.ReadAllText(Path.Combine(proc, "cmdline")).Contains(dir, StringComparison.Ordinal)) continue;
                var rank = File.ReadAllText(Path.Combine(proc, "environ")).Split('\0')
                    .FirstOrDefault(v => v.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal));
                if (rank is not null) found.Add((pid, int.Parse(rank["OMPI_COMM_WORLD_RANK=".Length..])));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }   // the process ended meanwhile
        }
        return found;
    }
}
