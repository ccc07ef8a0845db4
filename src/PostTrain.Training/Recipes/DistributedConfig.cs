// The `distributed:` section: how a run started as several ranks (posttrain launch, mpirun, srun) trains. Without
// a launcher the run is one process and these keys change nothing.
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
