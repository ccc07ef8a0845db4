// What a recipe calls to train data-parallel: the world group, the rows of a global batch this rank trains on, sums
// of per-rank numbers, and the optimizer step (gradient sync, global clipping, AdamW, ZeRO). Batch sizes in configs
// stay global: every rank reads the same global batches (same seed) and takes its contiguous share of each batch's
// rows, and losses are normalised by the global token count, so the summed gradient equals one process's.
// With one process (no launcher) every call is the identity, and the step is exactly the single-process step.
// Rank 0 logs, shows progress and writes shared outputs (IsMain).
using PostTrain.Core.Distributed;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Training.Distributed;

public sealed class DataParallel : IDisposable
{
    private readonly DataParallelOptimizer optimizer;

    public ProcessGroup Group { get; }
    public bool IsMain => Group.IsMain;
    public int Size => Group.Size;

    public DataParallel(DistributedConfig cfg, IEnumerable<(string Name, Parameter Param)> parameters,
        Func<IReadOnlyList<(string Name, Parameter Param)>, AdamW> createAdamW, ProcessGroup? group = null)
    {
        Group = group ?? Dist.World;
        optimizer = new DataParallelOptimizer(Group, parameters, cfg.Stage, createAdamW, cfg.BucketElements);
    }

    public double LearningRate { get => optimizer.LearningRate; set => optimizer.LearningRate = value; }

    /// <summary>This rank's contiguous share of items (sizes differ by at most one; a rank may get none).</summary>
    public IReadOnlyList<T> Shard<T>(IReadOnlyList<T> items)
    {
        var split = ProcessGroup.EvenSplit(items.Count, Size);
        int first = (int)split.Take(Group.Rank).Sum();
        return items.Skip(first).Take((int)split[Group.Rank]).ToList();
    }

    /// <summary>Items i with i % size == rank (for round-robin work such as evaluation batches).</summary>
    public bool Owns(long index) => index % Size == Group.Rank;

    /// <summary>Sums of per-rank values (each rank passes its partial sums).</summary>
    public double[] Sum(params double[] values) => Group.AllReduce(values);

    /// <summary>Gradient sync, global-norm clipping (null = none) and AdamW; returns the global norm before clipping.</summary>
    public double Step(double? maxNorm) => optimizer.Step(maxNorm);

    public void ZeroGrad() => optimizer.ZeroGrad();

    /// <summary>The whole optimizer state in the single-process format (ZeRO shards gathered from their owners), so a
    /// checkpoint resumes at any process count. Collective: every rank calls it.</summary>
    public Dictionary<string, Tensor> FullStateDict() => optimizer.FullStateDict();

    /// <summary>Loads a full (single-process format) state: each rank keeps the entries of the parameters it updates.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) => optimizer.LoadStateDict(state);

    /// <summary>Progress for this rank: the recipe's own on rank 0, silent elsewhere.</summary>
    public IProgressReporter Progress(Func<IProgressReporter> create) => IsMain ? create() : new SilentProgress();

    public TextWriter Log(TextWriter log) => IsMain ? log : TextWriter.Null;

    public void Dispose() => optimizer.Dispose();

    private sealed class SilentProgress : IProgressReporter
    {
        public void Update(long step, double loss, long stepTokens) { }
        public void Message(string line) { }
        public void Dispose() { }
    }
}
