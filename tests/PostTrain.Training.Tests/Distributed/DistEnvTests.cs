// Rank detection from the launchers' environments, and a process without any: world size 1, no MPI.
using PostTrain.Core.Distributed;

namespace PostTrain.Training.Tests.Distributed;

public sealed class DistEnvTests
{
    private static DistEnv From(params (string, string)[] vars)
    {
        var d = vars.ToDictionary(v => v.Item1, v => v.Item2);
        return DistEnv.From(k => d.GetValueOrDefault(k));
    }

    [Fact]
    public void EachLauncherIsRecognisedFromItsVariables()
    {
        Assert.Equal(new DistEnv(Launcher.OpenMpi, 3, 8, 1, null, null),
            From(("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_SIZE", "8"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"), ("RANK", "5")));
        Assert.Equal(new DistEnv(Launcher.Slurm, 5, 16, 1, null, null),
            From(("SLURM_PROCID", "5"), ("SLURM_NTASKS", "16"), ("SLURM_LOCALID", "1")));
        Assert.Equal(new DistEnv(Launcher.Torchrun, 2, 4, 0, "10.0.0.1", 29500),
            From(("RANK", "2"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "10.0.0.1"), ("MASTER_PORT", "29500")));
        var none = From();
        Assert.Equal(Launcher.None, none.Launcher);
        Assert.False(none.IsDistributed);
        // a Slurm allocation without srun (SLURM_NTASKS but no SLURM_PROCID) is one process
        Assert.False(From(("SLURM_NTASKS", "4")).IsDistributed);
    }

    [Fact]
    public void BadValuesNameTheVariable()
    {
        var e = Assert.Throws<ArgumentException>(() => From(("WORLD_SIZE", "two")));
        Assert.Contains("WORLD_SIZE", e.Message);
        var t = Assert.Throws<ArgumentException>(() => DistEnv.Timeout(k => k == DistEnv.TimeoutVariable ? "-1" : null));
        Assert.Contains(DistEnv.TimeoutVariable, t.Message);
        Assert.Equal(TimeSpan.FromSeconds(2.5), DistEnv.Timeout(k => k == DistEnv.TimeoutVariable ? "2.5" : null));
    }

    [Fact]
    public void AProcessWithoutALauncherIsOneRankAndLoadsNoMpi()
    {
        Assert.Same(SingleProcessGroup.Instance, Dist.World);
        Assert.DoesNotContain(System.Diagnostics.Process.GetCurrentProcess().Modules.Cast<System.Diagnostics.ProcessModule>(),
            m => m.ModuleName.StartsWith("libmpi", StringComparison.Ordinal));
    }
}
