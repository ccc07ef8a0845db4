// What a recipe calls to train data-parallel (TrainingRun.Parallel): the world group, the rows of a global batch this
// rank trains on, and sums of per-rank numbers. Batch sizes in configs stay global: every rank reads the same global
// batches (same seed) and takes its contiguous share of each batch's rows; losses are normalised by the global token
// count, so the gradients summed by the optimizer step (DataParallelOptimizer) equal one process's. Rank 0 logs, shows
// progress and writes shared outputs (IsMain). Recipes that generate (grpo, distill, eval) shard their prompts or
// problems with ShardRange and gather per-item results in the global order with Gather. With one process (no
// launcher) every call is the identity.
using System.Text.Json;
using System.Text.Json.Serialization;
using PostTrain.Core.Distributed;
using PostTrain.Training.Infra;
using TorchSharp;

namespace PostTrain.Training.Distributed;

public sealed class DataParallel(ProcessGroup group)
{
    public ProcessGroup Group { get; } = group;
    public bool IsMain => Group.IsMain;
    public int Size => Group.Size;

    /// <summary>This rank's contiguous share of items (sizes differ by at most one; a rank may get none).</summary>
    public IReadOnlyList<T> Shard<T>(IReadOnlyList<T> items)
    {
        if (Size == 1) return items;
        var (first, count) = ShardRange(items.Count);
        return items.Skip(first).Take(count).ToList();
    }

    /// <summary>Where this rank's contiguous share of n items starts and how many it holds (the split of Shard).</summary>
    public (int First, int Count) ShardRange(int n)
    {
        var split = ProcessGroup.EvenSplit(n, Size);
        return ((int)split.Take(Group.Rank).Sum(), (int)split[Group.Rank]);
    }

    /// <summary>Every rank's items concatenated in rank order, on every rank: with ShardRange shards, the global order.
    /// Items travel as JSON (doubles round-trip exactly; NaN and infinities included). Collective.</summary>
    public IReadOnlyList<T> Gather<T>(IReadOnlyList<T> local)
    {
        if (Size == 1) return local;
        var bytes = JsonSerializer.SerializeToUtf8Bytes(local, GatherJson);
        var lengths = Group.AllGather(bytes.LongLength);
        using var mine = torch.tensor(bytes);
        using var all = Group.AllGatherV(mine, lengths);
        var joined = all.data<byte>().ToArray();
        var result = new List<T>();
        long at = 0;
        foreach (var n in lengths)
        {
            result.AddRange(JsonSerializer.Deserialize<List<T>>(joined.AsSpan((int)at, (int)n), GatherJson)!);
            at += n;
        }
        return result;
    }

    private static readonly JsonSerializerOptions GatherJson = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>Element-wise maxima over the ranks.</summary>
    public double[] Max(params double[] values) => Group.AllReduce(values, ReduceOp.Max);

    /// <summary>Whether item <paramref name="index"/> of a round-robin split (evaluation batches) is this rank's.</summary>
    public bool Owns(long index) => index % Size == Group.Rank;

    /// <summary>Sums over the ranks of per-rank partial sums.</summary>
    public double[] Sum(params double[] values) => Group.AllReduce(values);

    /// <summary>Progress for this rank: the run's own on rank 0, silent elsewhere.</summary>
    public IProgressReporter Progress(Func<IProgressReporter> create) => IsMain ? create() : new SilentProgress();

    /// <summary>Log lines: rank 0's go to the log, the others' nowhere.</summary>
    public TextWriter Log(TextWriter log) => IsMain ? log : TextWriter.Null;

    private sealed class SilentProgress : IProgressReporter
    {
        public void Update(long step, double loss, long stepTokens) { }
        public void Message(string line) { }
        public void Dispose() { }
    }
}
