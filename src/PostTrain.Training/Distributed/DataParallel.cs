// What a recipe calls to train data-parallel (TrainingRun.Parallel): the world group, the rows of a global batch this
// rank trains on, and sums of per-rank numbers. Batch sizes in configs stay global: every rank reads the same global
// batches (same seed) and takes its contiguous share of each batch's rows; losses are normalised by the global token
// count, so the gradients summed by the optimizer step (DataParallelOptimizer) equal one process's. Rank 0 logs, shows
// progress and writes shared outputs (IsMain). With one process (no launcher) every call is the identity.
using PostTrain.Core.Distributed;
using PostTrain.Training.Infra;

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
        var split = ProcessGroup.EvenSplit(items.Count, Size);
        int first = (int)split.Take(Group.Rank).Sum();
        return items.Skip(first).Take((int)split[Group.Rank]).ToList();
    }

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
