// Data-parallel AdamW step: gradient sync over the ranks, global gradient-norm clipping, optimizer step, with the
// ZeRO stage chosen (ZeroStage). Every rank ends the step with the same parameters, equal (up to fp32 summation
// order) to a single process that saw the whole global batch.
//   stage 0: bucketed all-reduce of gradients; clip_grad_norm_ and AdamW on every rank (as one process does).
//   stage 1: the same all-reduce; each rank's AdamW holds state for the parameters it owns only (parameters are
//            given to ranks whole, largest-first to the least loaded rank) and updates them; the updated
//            parameters are all-gathered.
//   stage 2: gradients are laid out owner by owner and reduce-scattered: each rank receives the summed gradients of
//            its own parameters; the global norm is the square root of the all-reduced sum of each rank's squares.
//            Simplification: TorchSharp cannot drop a single parameter's .grad, so the other ranks' gradient buffers
//            stay allocated (the communication and the optimizer memory are ZeRO-2's; gradient memory is not freed).
// Clipping as torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied when below 1.
using TorchSharp;
using TorchSharp.Modules;
using AdamW = PostTrain.Core.Precision.AdamW;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed class DataParallelOptimizer : IDisposable
{
    private readonly ProcessGroup group;
    private readonly (string Name, Parameter Param)[] all;
    private readonly int[] owner;                 // rank owning each parameter (all 0..Size-1; stage 0: own rank)
    private readonly AdamW optimizer;
    private readonly long bucketElements;

    public ZeroStage Stage { get; }
    public ProcessGroup Group => group;

    public double LearningRate { get => optimizer.LearningRate; set => optimizer.LearningRate = value; }

    /// <param name="createAdamW">Builds the AdamW over the parameters this rank updates (all of them at stage 0).</param>
    public DataParallelOptimizer(ProcessGroup group, IEnumerable<(string Name, Parameter Param)> parameters, ZeroStage stage,
        Func<IReadOnlyList<(string Name, Parameter Param)>, AdamW> createAdamW, long bucketElements = GradientBuckets.DefaultBucketElements)
    {
        this.group = group;
        all = parameters.ToArray();
        Stage = group.Size == 1 ? ZeroStage.None : stage;
        this.bucketElements = bucketElements;
        owner = Stage == ZeroStage.None ? Enumerable.Repeat(group.Rank, all.Length).ToArray() : Partition(all.Select(p => p.Param.numel()).ToArray(), group.Size);
        if (Stage != ZeroStage.None && all.Select(p => p.Param.dtype).Distinct().Count() > 1)
            throw new NotSupportedException("ZeRO stages 1 and 2 need all parameters in one dtype");
        optimizer = createAdamW(all.Where((_, i) => owner[i] == group.Rank).ToList());
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

    /// <summary>Syncs gradients, clips them to maxNorm (null: no clipping) by the global norm, and steps. Returns the
    /// global gradient norm before clipping.</summary>
    public double Step(double? maxNorm)
    {
        using var scope = NewDisposeScope();
        var ps = all.Select(p => p.Param).ToList();
        var withGrad = GradientBuckets.AgreeOnGradients(group, ps);
        double norm;
        if (Stage == ZeroStage.Two)
        {
            ReduceScatterGradients(withGrad);
            var mine = withGrad.Where(p => OwnerOf(p) == group.Rank).ToList();
            norm = ShardedNormAndClip(mine, maxNorm);
        }
        else
        {
            GradientBuckets.AllReduce(group, withGrad, bucketElements);
            norm = nn.utils.clip_grad_norm_(withGrad, maxNorm ?? double.MaxValue);   // every rank holds every summed gradient
        }
        optimizer.Step();
        if (Stage != ZeroStage.None) GatherParameters();
        return norm;
    }

    public void ZeroGrad()
    {
        foreach (var (_, p) in all) p.grad?.zero_();
    }

    /// <summary>This rank's optimizer state (its shard at stages 1 and 2), keyed by parameter name.</summary>
    public Dictionary<string, Tensor> StateDict() => optimizer.StateDict();

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) => optimizer.LoadStateDict(state);

    /// <summary>The state of every parameter, in AdamW.StateDict's format, on every rank: at ZeRO 1/2 each entry is
    /// broadcast from the rank that owns it. Collective.</summary>
    public Dictionary<string, Tensor> FullStateDict()
    {
        var local = optimizer.StateDict();
        if (Stage == ZeroStage.None) return local;
        var full = new Dictionary<string, Tensor>();
        var momentType = optimizer.Bf16Moments ? ScalarType.BFloat16 : ScalarType.Float32;
        for (int i = 0; i < all.Length; i++)
        {
            var (name, p) = all[i];
            foreach (var key in new[] { name + ".exp_avg", name + ".exp_avg_sq", name + ".step" })
            {
                var t = owner[i] == group.Rank ? local[key]
                    : key.EndsWith(".step", StringComparison.Ordinal) ? tensor(0L) : empty(p.shape, momentType, p.device);
                group.Broadcast(t, owner[i]);
                full[key] = t.DetachFromDisposeScope();
            }
        }
        return full;
    }

    /// <summary>Names of the parameters whose optimizer state this rank holds.</summary>
    public IEnumerable<string> OwnedNames => all.Where((_, i) => owner[i] == group.Rank).Select(p => p.Name);

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

    public void Dispose() => optimizer.Dispose();
}
