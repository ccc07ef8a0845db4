// How a run's ranks are laid out for expert parallelism (EP size P, world size W, P divides W): EP groups of P
// consecutive ranks {gP, ..., gP + P - 1}, each holding every routed expert once (rank r of a group holds experts
// [r E/P, (r+1) E/P)); the W/P ranks with the same EP rank hold the same experts and form a replica group, over which
// those experts' gradients are summed (and their ZeRO shards spread). Every other parameter is replicated on every
// rank and summed over the world, as in plain data parallelism. Every rank trains on its own share of each batch.
// MaxDevicesPerToken (M): device-limited routing, each token's experts on at most M ranks of its EP group (P = no limit).
namespace PostTrain.Core.Distributed;

public sealed record ExpertParallelism(ProcessGroup Experts, ProcessGroup Replicas, int MaxDevicesPerToken) : IDisposable
{
    public int Size => Experts.Size;

    /// <summary>Splits the world into EP groups of <paramref name="size"/> consecutive ranks and their replica groups.
    /// Collective (every rank calls it). maxDevicesPerToken null = no limit.</summary>
    public static ExpertParallelism Create(ProcessGroup world, int size, int? maxDevicesPerToken)
    {
        if (size < 1 || world.Size % size != 0)
            throw new ArgumentException($"expert-parallel size {size} does not divide the world size {world.Size}");
        var experts = world.Split(world.Rank / size, world.Rank);
        var replicas = world.Split(world.Rank % size, world.Rank);
        return new ExpertParallelism(experts, replicas, Math.Min(maxDevicesPerToken ?? size, size));
    }

    /// <summary>The first routed expert this rank holds, of <paramref name="localExperts"/> consecutive ones.</summary>
    public int FirstExpert(int localExperts) => Experts.Rank * localExperts;

    public void Dispose()
    {
        Experts.Dispose();
        Replicas.Dispose();
    }
}
