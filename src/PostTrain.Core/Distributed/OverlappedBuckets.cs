// Gradient all-reduce overlapped with backward (DataParallelOptimizer.EnableOverlap). The model marks each block's
// input (a decoder layer: GradientReadyFunction); the blocks' parameters are bucketed once, in reverse order (the last
// block's parameters first, GradientBuckets.Buckets), and a bucket whose blocks have all signalled in the last backward
// pass of the step is flattened and its AllReduceAsync started while backward goes on. At the step (Finish) every
// started bucket is waited, the others are reduced then, in bucket order, and the sums are copied back into .grad.
// A parameter without a local gradient at launch contributes zeros (as AgreeOnGradients' zero gradient does); one with
// no gradient on any rank gets none back. The sums are the same with or without the overlap: the same buckets,
// reduced by the same engine call; only the time the call starts differs.
// Passes: the blocks signal in decreasing order in one backward; a signal not below the previous one starts a new
// pass. Only the backwardsPerStep-th pass launches (gradient accumulation: earlier passes' gradients are not final);
// a pass beyond it makes the started buckets stale, and Finish reduces everything again from .grad.
// The buckets use their own communicator (a Split of the group); at the step the ranks first agree, over the group,
// on how many buckets were started (a rank that ran fewer backward passes starts the rest then) and on staleness.
// Assumption: every rank runs the same blocks in the same order (the same model code), so the launch order matches.
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

internal sealed class OverlappedBuckets : IDisposable
{
    private readonly ProcessGroup group;         // the data-parallel group: the agreement at the step
    private readonly ProcessGroup buckets_;      // the same ranks, own communicator: the bucket all-reduces only
    private readonly Parameter[][] buckets;
    private readonly int[][] bucketsOfBlock;      // the buckets holding each block's parameters
    private readonly int[] blocksPerBucket;
    private readonly int[] waiting;               // blocks of each bucket not yet signalled in this pass
    private readonly Tensor?[] flats;
    private readonly CollectiveHandle?[] handles;
    private readonly HashSet<Parameter> covered = new(ReferenceEqualityComparer.Instance);
    private readonly int backwardsPerStep;
    private int passes, lastSignal = -1;
    private bool stale;

    /// <summary>Buckets started from a gradient-ready signal in the latest backward pass.</summary>
    public int LaunchedDuringBackward { get; private set; }

    public OverlappedBuckets(ProcessGroup group, Parameter[][] blocks, long bucketElements, int backwardsPerStep)
    {
        if (backwardsPerStep < 1) throw new ArgumentException($"backwardsPerStep {backwardsPerStep} must be at least 1");
        this.group = group;
        buckets_ = group.Split(0, group.Rank);
        this.backwardsPerStep = backwardsPerStep;
        var ordered = blocks.SelectMany(b => b).ToList();
        if (ordered.Distinct(ReferenceEqualityComparer.Instance).Count() != ordered.Count)
            throw new ArgumentException("a parameter belongs to two blocks");
        buckets = GradientBuckets.Buckets(ordered, bucketElements).Select(b => b.ToArray()).ToArray();
        foreach (var p in ordered) covered.Add(p);
        var bucketOf = new Dictionary<Parameter, int>(ReferenceEqualityComparer.Instance);
        for (int k = 0; k < buckets.Length; k++) foreach (var p in buckets[k]) bucketOf[p] = k;
        bucketsOfBlock = blocks.Select(b => b.Select(p => bucketOf[p]).Distinct().Order().ToArray()).ToArray();
        blocksPerBucket = new int[buckets.Length];
        foreach (var ks in bucketsOfBlock) foreach (int k in ks) blocksPerBucket[k]++;
        waiting = new int[buckets.Length];
        flats = new Tensor?[buckets.Length];
        handles = new CollectiveHandle?[buckets.Length];
    }

    public int Count => buckets.Length;

    /// <summary>Whether p is in one of the planned buckets (the others are reduced after backward).</summary>
    public bool Covers(Parameter p) => covered.Contains(p);

    /// <summary>Block `block`'s input, marked: its gradient in backward signals the block's gradients ready.</summary>
    public Tensor Mark(int block, Tensor input) =>
        input.requires_grad && block < bucketsOfBlock.Length ? GradientReadyFunction.Mark(input, () => Signal(block)) : input;

    private void Signal(int block)
    {
        if (block >= lastSignal) NewPass();
        lastSignal = block;
        if (passes != backwardsPerStep || stale) return;
        foreach (var h in handles) h?.Test();   // the engine may progress only inside its calls
        foreach (int k in bucketsOfBlock[block])
            if (--waiting[k] == 0 && handles[k] is null)
            {
                Launch(k);
                LaunchedDuringBackward++;
            }
    }

    private void NewPass()
    {
        passes++;
        LaunchedDuringBackward = 0;
        if (passes > backwardsPerStep && handles.Any(h => h is not null)) stale = true;
        Array.Copy(blocksPerBucket, waiting, waiting.Length);
    }

    private void Launch(int k)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var parts = buckets[k].Select(p => p.grad is { } g ? g.reshape(-1) : zeros(p.numel(), p.dtype, p.device)).ToList();
        var flat = parts.Count == 1 ? parts[0].clone() : cat(parts, 0);   // TorchSharp's cat of one tensor aliases it
        flats[k] = flat.DetachFromDisposeScope();
        handles[k] = buckets_.AllReduceAsync(flat);
    }

    /// <summary>At the step: every planned bucket summed over the ranks (started ones waited, the others reduced now)
    /// and copied back into the gradients of the parameters in withGrad. Collective.</summary>
    public void Finish(IReadOnlyCollection<Parameter> withGrad)
    {
        var has = withGrad.ToHashSet(ReferenceEqualityComparer.Instance);
        if (CatchUp()) Discard(agreed: true);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        for (int k = 0; k < buckets.Length; k++)
        {
            if (handles[k] is null) Launch(k);
            handles[k]!.Wait();
            long at = 0;
            foreach (var p in buckets[k])
            {
                long n = p.numel();
                if (has.Contains(p)) p.grad!.copy_(flats[k]!.narrow(0, at, n).view(p.grad!.shape));
                at += n;
            }
        }
        Reset();
    }

    // Ranks may have run different numbers of backward passes (a rank without rows in a micro-batch skips one), so
    // they may have started different numbers of buckets (always a prefix: buckets complete in index order). The ranks
    // agree on the largest count and on staleness over the main group; each then starts the buckets it lacks, so the
    // bucket communicator sees the same calls on every rank. Returns whether some rank's started sums are stale.
    private bool CatchUp()
    {
        int started = 0;
        while (started < handles.Length && handles[started] is not null) started++;
        var agreed = group.AllReduce([started, stale ? 1L : 0L], ReduceOp.Max);
        for (int k = started; k < agreed[0]; k++) Launch(k);
        return agreed[1] != 0;
    }

    /// <summary>Waits for and drops every started bucket (a skipped step, or stale sums). Collective when this rank
    /// ran a backward pass since the last step.</summary>
    public void Discard() => Discard(agreed: passes == 0);

    private void Discard(bool agreed)
    {
        if (!agreed) CatchUp();
        foreach (var h in handles) h?.Wait();
        Reset();
    }

    private void Reset()
    {
        for (int k = 0; k < buckets.Length; k++)
        {
            flats[k]?.Dispose();
            flats[k] = null;
            handles[k] = null;
        }
        passes = 0;
        lastSignal = -1;
        stale = false;
    }

    public void Dispose()
    {
        foreach (var h in handles) h?.Wait();
        Reset();
        buckets_.Dispose();
    }
}
