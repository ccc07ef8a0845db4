// Data-parallel optimizer step: gradient sync over the ranks, global gradient-norm clipping, the wrapped optimizer's
// step (AdamW, SGD: any IOptimizer), with the ZeRO stage chosen (ZeroStage). Every rank ends the step with the same parameters, equal (up to fp32 summation
// order) to a single process that saw the whole global batch.
//   stage 0: bucketed all-reduce of gradients; clipping and the step on every rank (as one process does).
//   stage 1: the same all-reduce; each rank's optimizer holds state for the parameters it owns only (parameters are
//            given to ranks whole, largest-first to the least loaded rank) and updates them; the updated
//            parameters are all-gathered.
//   stage 2: gradients are laid out owner by owner and reduce-scattered: each rank receives the summed gradients of
//            its own parameters; the global norm is the square root of the all-reduced sum of each rank's squares.
//            Simplification: TorchSharp cannot drop a single parameter's .grad, so the other ranks' gradient buffers
//            stay allocated (the communication and the optimizer memory are ZeRO-2's; gradient memory is not freed).
// Clipping as torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied when below 1 (stages 0 and 1
// call the caller's own clipping on the summed gradients, so one process is exactly the single-process step).
// StateDict is the whole state in the wrapped optimizer's single-process format on every rank (collective);
// LoadStateDict takes that format and keeps this rank's entries. Training checkpoints of plain data-parallel runs do not
// gather: each rank writes the state of its Partition share (Local's entries) to its own file (DistCheckpointWriter).
// Overlap (stages 0 and 1, no expert parallelism): EnableOverlap gives the model a marker for its blocks' inputs; the
// blocks' gradient buckets start their all-reduce during backward (OverlappedBuckets), the rest is reduced at the step.
// Expert parallel models: see DataParallelOptimizer.Experts.cs (routed experts synced over their replica group).
using System.Text;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using PostTrain.Core.Precision;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed partial class DataParallelOptimizer : IOptimizer
{
    private readonly ProcessGroup group;
    private readonly (string Name, Parameter Param)[] all;
    private readonly int[] owner;                 // rank owning each parameter (stage 0: this rank)
    private readonly int[] partition;             // the ZeRO partition at every stage (stage 0: who writes a checkpoint's share)
    private readonly IOptimizer optimizer;        // over the parameters this rank updates
    private readonly long bucketElements;
    private OverlappedBuckets? overlap;

    public ZeroStage Stage { get; }
    public ProcessGroup Group => group;
    public IOptimizer Local => optimizer;

    public double LearningRate
    {
        get => optimizer.LearningRate;
        set
        {
            optimizer.LearningRate = value;
            if (expertPart is not null) expertPart.LearningRate = value;
        }
    }

    /// <summary>Every parameter of the model (not only this rank's shard), in order.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <param name="create">Builds the optimizer over the parameters this rank updates (all of them at stage 0).</param>
    /// <param name="experts">Expert parallelism of the model (null or one rank: every parameter is replicated).</param>
    public DataParallelOptimizer(ProcessGroup group, IEnumerable<(string Name, Parameter Param)> parameters, ZeroStage stage,
        Func<IReadOnlyList<(string Name, Parameter Param)>, IOptimizer> create, long bucketElements = GradientBuckets.DefaultBucketElements,
        ExpertParallelism? experts = null)
    {
        this.group = group;
        all = parameters.ToArray();
        if (experts is { Size: > 1 })
        {
            this.experts = experts;
            expertPart = new DataParallelOptimizer(experts.Replicas, all.Where(p => ExpertParallelCheckpoint.IsExpert(p.Name)), stage, create, bucketElements);
            all = all.Where(p => !ExpertParallelCheckpoint.IsExpert(p.Name)).ToArray();
        }
        Parameters = all.Select(p => p.Param).Concat(expertPart?.Parameters ?? []).ToArray();
        Stage = group.Size == 1 ? ZeroStage.None : stage;
        this.bucketElements = bucketElements;
        partition = Partition(all.Select(p => p.Param.numel()).ToArray(), group.Size);
        owner = Stage == ZeroStage.None ? Enumerable.Repeat(group.Rank, all.Length).ToArray() : partition;
        if (Stage != ZeroStage.None && all.Select(p => p.Param.dtype).Distinct().Count() > 1)
            throw new NotSupportedException("ZeRO stages 1 and 2 need all parameters in one dtype");
        optimizer = create(all.Where((_, i) => owner[i] == group.Rank).ToList());
    }

    /// <summary>Owner of each parameter: largest first, each to the rank with the fewest elements so far (ties: lowest rank).</summary>
    public static int[] Partition(long[] sizes, int ranks)
    {
        var load = new long[ranks];
        var owner = new int[sizes.Length];
        foreach (int i in Enumerable.Range(0, sizes.Length).OrderByDescending(i => sizes[i]).ThenBy(i => i))
        {
            int r = Array.IndexOf(load, load.Min());
            owner[i] = r;
            load[r] += sizes[i];
        }
        return owner;
    }

    /// <summary>Gradient sync and the step, without clipping.</summary>
    public void Step() => Step(maxNorm: null);

    /// <summary>Syncs gradients, clips them to maxNorm (null: none) by the global norm, and steps. Returns the global
    /// gradient norm before clipping.</summary>
    public double Step(double? maxNorm) =>
        Step(ps => maxNorm is double max ? nn.utils.clip_grad_norm_(ps, max) : Norm(ps), maxNorm);

    /// <summary>The L2 norm of the gradients, in fp64 (no clipping: clip_grad_norm_ with double.MaxValue overflows
    /// converting the limit to the gradients' float type).</summary>
    private static double Norm(IReadOnlyList<Parameter> ps)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Math.Sqrt(SquaredSum([.. ps]));
    }

    /// <param name="clipAndNorm">Stages 0/1: clips the summed gradients and returns their norm (the single-process code).</param>
    /// <param name="maxNorm">Stage 2: the clipping limit used on the sharded gradients.</param>
    public double Step(Func<IReadOnlyList<Parameter>, double> clipAndNorm, double? maxNorm)
    {
        if (expertPart is not null) return StepWithExperts(maxNorm);
        using var scope = NewDisposeScope();
        var withGrad = GradientBuckets.AgreeOnGradients(group, Parameters);
        double norm;
        if (Stage == ZeroStage.Two)
        {
            ReduceScatterGradients(withGrad);
            norm = ShardedNormAndClip(withGrad.Where(p => OwnerOf(p) == group.Rank).ToList(), maxNorm);
        }
        else
        {
            if (overlap is null) GradientBuckets.AllReduce(group, withGrad, bucketElements);
            else
            {
                overlap.Finish(withGrad);
                GradientBuckets.AllReduce(group, withGrad.Where(p => !overlap.Covers(p)).ToList(), bucketElements);
            }
            norm = withGrad.Count == 0 ? 0 : clipAndNorm(withGrad);   // every rank holds every summed gradient
        }
        optimizer.Step();
        if (Stage != ZeroStage.None) GatherParameters();
        return norm;
    }

    /// <summary>Sums every parameter's gradient over the ranks in place (Step's bucketed all-reduce, without the clip and
    /// the update): for a step whose clipping and update run elsewhere, the data-parallel fast path's update body.
    /// ZeRO stage 0 without expert parallelism or overlap only (collective).</summary>
    public void SumGradients()
    {
        if (Stage != ZeroStage.None || expertPart is not null || overlap is not null)
            throw new NotSupportedException("DataParallelOptimizer.SumGradients: ZeRO stage 0 without expert parallelism or overlap only");
        using var scope = NewDisposeScope();
        GradientBuckets.AllReduce(group, GradientBuckets.AgreeOnGradients(group, Parameters), bucketElements);
    }

    /// <summary>Overlaps the gradient all-reduce with backward: blocks[i] are the parameters whose gradients are
    /// complete when the gradient w.r.t. the i-th block's input arrives (a decoder layer's; blocks in forward order).
    /// Returns the marker the model applies to block i's input, (i, x) => x (GradientReadyFunction); null where the
    /// overlap does not apply (one process, ZeRO 2, expert parallelism): the model then runs unmarked.
    /// backwardsPerStep: backward passes per optimizer step (gradient accumulation); only the last one launches.
    /// Collective (the buckets get their own communicator).</summary>
    public Func<int, Tensor, Tensor>? EnableOverlap(IReadOnlyList<IEnumerable<Parameter>> blocks, int backwardsPerStep = 1)
    {
        if (group.Size == 1 || Stage == ZeroStage.Two || expertPart is not null) return null;
        overlap?.Dispose();
        var mine = all.Select(p => p.Param).ToHashSet(ReferenceEqualityComparer.Instance);
        var planned = blocks.Select(b => b.Where(p => p.requires_grad && mine.Contains(p)).ToArray()).ToArray();
        overlap = new OverlappedBuckets(group, planned, bucketElements, backwardsPerStep);
        return overlap.Mark;
    }

    /// <summary>Buckets planned to start during backward (0 without overlap).</summary>
    public int OverlappedBucketCount => overlap?.Count ?? 0;

    /// <summary>Buckets whose all-reduce started during the latest backward pass (0 without overlap).</summary>
    public int BucketsLaunchedDuringBackward => overlap?.LaunchedDuringBackward ?? 0;

    public void ZeroGrad()
    {
        overlap?.Discard();
        foreach (var p in Parameters) p.grad?.zero_();
    }

    /// <summary>The whole state (every rank's shard) in the wrapped optimizer's format, on every rank. Collective.
    /// Expert parallel: the experts' entries gathered over the EP group too (on the device; a checkpoint uses
    /// StateDictExpertsLocal and gathers them one stack at a time instead).</summary>
    public Dictionary<string, Tensor> StateDict() => expertPart is null ? GatheredStateDict() : StateDictWithExperts();

    /// <summary>The state as StateDict, except that the routed experts' entries hold this rank's rows only (gathered
    /// over their replica group's ZeRO shards, not over the EP group): for a checkpoint whose writer gathers them
    /// stack by stack (ExpertGatherStream). Entries this rank holds alias the optimizer's tensors (no copy; valid until
    /// the next step); ZeRO shards of other ranks arrive in new tensors. Collective over the world.</summary>
    public Dictionary<string, Tensor> StateDictExpertsLocal()
    {
        var state = GatheredStateDict(aliases: true);
        if (expertPart is not null)
            foreach (var (key, t) in expertPart.GatheredStateDict(aliases: true)) state[key] = t;
        return state;
    }

    // This instance's parameters' state, gathered over its group's ZeRO shards (aliases: this rank's entries alias the
    // optimizer's tensors instead of copying them).
    private Dictionary<string, Tensor> GatheredStateDict(bool aliases = false)
    {
        var local = aliases ? optimizer.StateAliases() : optimizer.StateDict();
        if (Stage == ZeroStage.None) return local;
        // each rank's keys, dtypes and shapes, so every rank can receive every entry
        var meta = JsonSerializer.SerializeToUtf8Bytes(local.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => new Entry(kv.Key, (int)kv.Value.dtype, kv.Value.shape)).ToArray());
        var perRank = group.AllGatherBytes(meta);
        var full = new Dictionary<string, Tensor>();
        var device = all.Length > 0 ? all[0].Param.device : CPU;
        for (int r = 0; r < group.Size; r++)
        {
            var entries = JsonSerializer.Deserialize<Entry[]>(perRank[r])!;
            foreach (var e in entries)
            {
                var t = r == group.Rank ? local[e.Key] : empty(e.Shape, (ScalarType)e.DType, e.Shape.Length == 0 ? CPU : device);
                group.Broadcast(t, r);
                full[e.Key] = t;
            }
        }
        return full;
    }

    private sealed record Entry(string Key, int DType, long[] Shape);

    /// <summary>Takes a whole state (single-process format); this rank's optimizer keeps its parameters' entries.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) => LoadStateDict(state, expertsSliced: false);

    /// <summary>As LoadStateDict; <paramref name="expertsSliced"/>: the routed experts' entries hold this rank's rows
    /// already (ExpertParallelCheckpoint.Slice applied while reading), not the (E, ...) stacks.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool expertsSliced)
    {
        optimizer.LoadStateDict(state);
        if (expertPart is not null) LoadExpertState(state, expertsSliced);
    }

    /// <summary>Every parameter with its name, in order.</summary>
    public IReadOnlyList<(string Name, Parameter Param)> Named => all;

    /// <summary>Names of the parameters in this rank's share of the ZeRO partition (at stage 0 too, where every rank
    /// holds every state: a checkpoint spreads the writes by this share).</summary>
    public IEnumerable<string> PartitionNames => all.Where((_, i) => partition[i] == group.Rank).Select(p => p.Name);

    /// <summary>Names of the parameters whose optimizer state this rank holds.</summary>
    public IEnumerable<string> OwnedNames => all.Where((_, i) => owner[i] == group.Rank).Select(p => p.Name).Concat(expertPart?.OwnedNames ?? []);

    /// <summary>By reference: Tensor.Equals compares values, so List.IndexOf would confuse two equal parameters.</summary>
    private int OwnerOf(Parameter p) => owner[Array.FindIndex(all, a => ReferenceEquals(a.Param, p))];

    private void ReduceScatterGradients(List<Parameter> withGrad)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var byRank = Enumerable.Range(0, group.Size).Select(r => withGrad.Where(p => OwnerOf(p) == r).ToList()).ToList();
        var rows = byRank.Select(l => l.Sum(p => p.numel())).ToArray();
        var flat = cat(byRank.SelectMany(l => l).Select(p => p.grad!.reshape(-1)).ToList(), 0);
        var mine = group.ReduceScatterV(flat, rows);
        long at = 0;
        foreach (var p in byRank[group.Rank])
        {
            p.grad!.copy_(mine.narrow(0, at, p.numel()).view(p.grad!.shape));
            at += p.numel();
        }
    }

    private double ShardedNormAndClip(List<Parameter> mine, double? maxNorm)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var local = mine.Count == 0 ? zeros(1, dtype: ScalarType.Float64)
            : stack(mine.Select(p => p.grad!.to(ScalarType.Float64).square().sum()).ToList()).sum().reshape(1);
        group.AllReduce(local);
        double norm = Math.Sqrt(local.item<double>());
        if (maxNorm is double max)
        {
            double coef = max / (norm + 1e-6);
            if (coef < 1) foreach (var p in mine) p.grad!.mul_(coef);
        }
        return norm;
    }

    private void GatherParameters()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var byRank = Enumerable.Range(0, group.Size).Select(r => all.Where((_, i) => owner[i] == r).Select(p => p.Param).ToList()).ToList();
        var rows = byRank.Select(l => l.Sum(p => p.numel())).ToArray();
        var mine = byRank[group.Rank];
        var local = mine.Count == 0 ? empty(0, dtype: all[0].Param.dtype, device: all[0].Param.device)
            : cat(mine.Select(p => p.reshape(-1)).ToList(), 0);
        var gathered = group.AllGatherV(local, rows);
        long at = 0;
        foreach (var p in byRank.SelectMany(l => l))
        {
            p.copy_(gathered.narrow(0, at, p.numel()).view(p.shape));
            at += p.numel();
        }
    }

    public void Dispose()
    {
        overlap?.Dispose();
        optimizer.Dispose();
        expertPart?.Dispose();
    }
}
