// Which rank of how many this process is, read from the launcher's environment:
//   Open MPI (mpirun, posttrain launch): OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK
//   Slurm (srun):                        SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID
//   torchrun:                            RANK / WORLD_SIZE / LOCAL_RANK (+ MASTER_ADDR / MASTER_PORT)
// No such variables (or a size of 1): one process, exactly as without distributed support, and MPI is never loaded.
// The engine is Open MPI, which bootstraps from mpirun or from srun's PMIx; a torchrun process (no MPI launcher)
// gets a clear error naming the launchers that work.
using System.Globalization;

namespace PostTrain.Core.Distributed;

public enum Launcher { None, OpenMpi, Slurm, Torchrun }

public sealed record DistEnv(Launcher Launcher, int Rank, int WorldSize, int LocalRank, string? MasterAddr, int? MasterPort)
{
    public const string TimeoutVariable = "POSTTRAIN_DIST_TIMEOUT";
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

    public bool IsDistributed => WorldSize > 1;

    public static DistEnv FromEnvironment() => From(Environment.GetEnvironmentVariable);

    public static DistEnv From(Func<string, string?> env)
    {
        if (Read(env, "OMPI_COMM_WORLD_SIZE") is int ompiSize)
            return new(Launcher.OpenMpi, Read(env, "OMPI_COMM_WORLD_RANK") ?? 0, ompiSize, Read(env, "OMPI_COMM_WORLD_LOCAL_RANK") ?? 0, null, null);
        if (Read(env, "SLURM_NTASKS") is int slurmSize && env("SLURM_PROCID") is not null)
            return new(Launcher.Slurm, Read(env, "SLURM_PROCID") ?? 0, slurmSize, Read(env, "SLURM_LOCALID") ?? 0, null, null);
        if (Read(env, "WORLD_SIZE") is int size)
            return new(Launcher.Torchrun, Read(env, "RANK") ?? 0, size, Read(env, "LOCAL_RANK") ?? 0, env("MASTER_ADDR"), Read(env, "MASTER_PORT"));
        return new(Launcher.None, 0, 1, 0, null, null);
    }

    /// <summary>The collective timeout: POSTTRAIN_DIST_TIMEOUT seconds, else 10 minutes.</summary>
    public static TimeSpan Timeout(Func<string, string?> env)
    {
        string? v = env(TimeoutVariable);
        if (v is null) return DefaultTimeout;
        return double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s > 0 ? TimeSpan.FromSeconds(s)
            : throw new ArgumentException($"{TimeoutVariable}: '{v}' is not a positive number of seconds");
    }

    private static int? Read(Func<string, string?> env, string name)
    {
        string? v = env(name);
        if (string.IsNullOrEmpty(v)) return null;
        return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x) && x >= 0 ? x
            : throw new ArgumentException($"environment variable {name}: '{v}' is not a non-negative integer");
    }
}
