// Which engine carries a run's collectives (`distributed.backend`, `posttrain dist-check --backend`):
//   auto: NCCL when the model is on a CUDA device and libnccl loads, else Open MPI (CUDA tensors staged through host);
//   mpi:  Open MPI for every tensor;
//   nccl: NCCL for CUDA tensors (MPI still bootstraps it and carries host arrays); an error on the CPU.
namespace PostTrain.Core.Distributed;

public enum DistBackend { Auto, Mpi, Nccl }

public static class DistBackends
{
    public static DistBackend Parse(string? value, string key = "distributed.backend") => (value ?? "auto").Trim().ToLowerInvariant() switch
    {
        "auto" => DistBackend.Auto,
        "mpi" => DistBackend.Mpi,
        "nccl" => DistBackend.Nccl,
        _ => throw new ArgumentException($"{key}: '{value}' is not auto, mpi or nccl"),
    };

    public static string Name(this DistBackend b) => b.ToString().ToLowerInvariant();
}
