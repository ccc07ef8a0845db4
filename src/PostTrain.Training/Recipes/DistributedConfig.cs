// The `distributed:` section: how a run started as several ranks (posttrain launch, mpirun, srun) trains. Without
// a launcher the run is one process and these keys change nothing.
// Expert parallelism (sft, grpo): expert_parallel = P shards every MoE layer's routed experts over groups of P consecutive
// ranks (Core/Distributed/ExpertParallelism); max_devices_per_token = M limits each token's experts to M ranks of its
// group (DeepSeek-V3's node-limited routing with ranks for nodes; null = no limit).
namespace PostTrain.Training.Recipes;

public sealed record DistributedConfig
{
    /// <summary>0 = plain data parallel; 1 = optimizer state sharded; 2 = gradients reduce-scattered too.</summary>
    public int ZeroStage { get; init; }

    /// <summary>auto (NCCL for a CUDA model when libnccl loads, else Open MPI) | mpi | nccl.</summary>
    public string Backend { get; init; } = "auto";

    public Core.Distributed.DistBackend EngineBackend
    {
        get
        {
            try { return Core.Distributed.DistBackends.Parse(Backend); }
            catch (ArgumentException e) { throw new RecipeConfigException(e.Message); }
        }
    }

    /// <summary>Gradient all-reduce bucket size in MiB (of fp32).</summary>
    public double BucketMb { get; init; } = 25;

    /// <summary>Start the decoder layers' gradient all-reduce during backward (ZeRO 0 and 1, no expert parallelism;
    /// the same sums as after backward). false: every bucket is reduced after backward.</summary>
    public bool Overlap { get; init; } = true;

    /// <summary>Expert-parallel group size P (1 = every rank holds every expert).</summary>
    public int ExpertParallel { get; init; } = 1;

    /// <summary>Device-limited routing: each token's routed experts on at most this many ranks of its EP group (null = no limit).</summary>
    public int? MaxDevicesPerToken { get; init; }

    /// <summary>expert_parallel checked against the world size and the model's routed experts; errors name the key.</summary>
    public void CheckExpertParallel(int worldSize, int routedExperts)
    {
        if (ExpertParallel < 1) throw new RecipeConfigException($"distributed.expert_parallel: {ExpertParallel} must be at least 1");
        if (MaxDevicesPerToken is < 1) throw new RecipeConfigException($"distributed.max_devices_per_token: {MaxDevicesPerToken} must be at least 1");
        if (ExpertParallel == 1) return;
        if (worldSize % ExpertParallel != 0)
            throw new RecipeConfigException($"distributed.expert_parallel: {ExpertParallel} does not divide the number of processes {worldSize}");
        if (routedExperts == 0 || routedExperts % ExpertParallel != 0)
            throw new RecipeConfigException($"distributed.expert_parallel: {ExpertParallel} does not divide the model's n_routed_experts {routedExperts}");
    }

    public Core.Distributed.ZeroStage Stage => ZeroStage switch
    {
        0 => Core.Distributed.ZeroStage.None,
        1 => Core.Distributed.ZeroStage.One,
        2 => Core.Distributed.ZeroStage.Two,
        _ => throw new RecipeConfigException($"distributed.zero_stage: {ZeroStage} is not 0, 1 or 2"),
    };

    public long BucketElements => BucketMb > 0 ? (long)(BucketMb * 1024 * 1024 / 4)
        : throw new RecipeConfigException($"distributed.bucket_mb: {BucketMb} must be positive");
}
