// The process's world group, created on first use from the environment (DistEnv): SingleProcessGroup when the
// process is not one of several ranks (MPI is then never loaded), else MPI_COMM_WORLD with the collective timeout.
// ForDevice gives the group a run's tensors use: the world group, or an NCCL communicator over it for a CUDA device.
namespace PostTrain.Core.Distributed;

public static class Dist
{
    private static readonly Lock Gate = new();
    private static ProcessGroup? world;

    public static ProcessGroup World
    {
        get
        {
            lock (Gate) return world ??= Create(DistEnv.FromEnvironment());
        }
    }

    public static bool IsMain => World.IsMain;

    private static readonly Dictionary<int, NcclProcessGroup> nccl = new();

    /// <summary>The group for collectives on <paramref name="device"/>'s tensors. auto: NCCL when the model is on a CUDA
    /// device, the job has several ranks, each on its own GPU, and libnccl loads; else the world group (Open MPI, CUDA
    /// tensors staged through the host; also when ranks share a GPU, which NCCL refuses). nccl: NCCL or a clear error
    /// (with one process too: a one-rank communicator). mpi: the world group.</summary>
    public static ProcessGroup ForDevice(TorchSharp.torch.Device device, DistBackend backend)
    {
        var w = World;
        bool onCuda = device.type == TorchSharp.DeviceType.CUDA;
        if (backend == DistBackend.Nccl && !onCuda)
            throw new InvalidOperationException($"distributed.backend: nccl needs the model on a CUDA device, but it is on {device}; use auto or mpi");
        if (!onCuda || backend == DistBackend.Mpi || (w.Size == 1 && backend == DistBackend.Auto)) return w;
        int ordinal = Math.Max(0, device.index);
        if (SharedGpu(w, ordinal) is string shared)
        {
            if (backend == DistBackend.Nccl) throw new InvalidOperationException($"distributed.backend: nccl: {shared}; NCCL needs one GPU per rank (use auto or mpi)");
            return w;
        }
        if (!NcclNative.TryLoad())
        {
            if (backend == DistBackend.Nccl) throw new InvalidOperationException("distributed.backend: nccl: " + NcclNative.LoadError);
            return w;
        }
        lock (Gate)
        {
            if (!nccl.TryGetValue(ordinal, out var g))
                nccl[ordinal] = g = new NcclProcessGroup(w, ordinal, DistEnv.Timeout(Environment.GetEnvironmentVariable));
            return g;
        }
    }

    /// <summary>A description of ranks that use the same GPU (same host, same device ordinal), or null.</summary>
    private static string? SharedGpu(ProcessGroup w, int ordinal)
    {
        if (w.Size == 1) return null;
        long key = ((long)(uint)StableHash(Environment.MachineName) << 16) | (uint)ordinal;
        var keys = w.AllGather(key);
        var dup = keys.Select((k, r) => (k, r)).GroupBy(x => x.k).FirstOrDefault(g => g.Count() > 1);
        return dup is null ? null : $"ranks {string.Join(", ", dup.Select(x => x.r))} share cuda:{ordinal} on one host";
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = (int)2166136261;
            foreach (char c in s) h = (h ^ c) * 16777619;
            return h & 0x7fffffff;
        }
    }

    /// <summary>At process exit: a rank that fails (code != 0) ends every rank of the job at once (MPI_Abort) instead
    /// of leaving them waiting in their next collective; otherwise the code is returned. MPI is not started here.</summary>
    public static int Exit(int code)
    {
        ProcessGroup? w;
        lock (Gate) w = world;
        if (code != 0 && w is MpiProcessGroup { Size: > 1 } mpi)
            mpi.Abort(code, $"exited with code {code}; ending all {mpi.Size} ranks");
        return code;
    }

    private static ProcessGroup Create(DistEnv env)
    {
        if (!env.IsDistributed) return SingleProcessGroup.Instance;
        if (env.Launcher == Launcher.Torchrun)
            throw new InvalidOperationException($"this process was started by torchrun (WORLD_SIZE={env.WorldSize}, RANK={env.Rank}), " +
                "but PostTrain's distributed engine is Open MPI, which torchrun cannot bootstrap: start the ranks with " +
                "`posttrain launch`, `mpirun -np N` or `srun --mpi=pmix`");
        var group = MpiProcessGroup.InitWorld(DistEnv.Timeout(Environment.GetEnvironmentVariable));
        if (group.Size != env.WorldSize || group.Rank != env.Rank)
            throw new InvalidOperationException($"{env.Launcher} says rank {env.Rank} of {env.WorldSize}, but MPI started rank {group.Rank} of " +
                $"{group.Size}" + (env.Launcher == Launcher.Slurm ? ": run srun with --mpi=pmix so Open MPI finds its peers" : ""));
        return group;
    }
}
