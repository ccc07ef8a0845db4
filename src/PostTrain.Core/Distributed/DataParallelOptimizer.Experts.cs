// DataParallelOptimizer for an expert-parallel model (ExpertParallelism of P > 1 ranks). Two parameter sets:
//   replicated (router, shared experts, attention, embeddings, norms): summed over the world, ZeRO over the world,
//     as in plain data parallelism (this instance);
//   routed experts (mlp.experts.{gate,up,down}_proj, this rank's E/P experts): complete within the EP group (each
//     expert lives on one rank of it), so summed over the replica group only (the W/P ranks holding the same experts),
//     with their ZeRO shards spread over that group (the inner instance, expertPart).
// "Has a gradient" is agreed over the world for both sets, so a stack no token reached on any rank is skipped by the
// optimizer exactly as one process skips it. The global gradient norm counts every element once: the squares of the
// replicated gradients from world rank 0 (stage 2: from each owner), those of each expert stack from replica rank 0
// (stage 2: from its owner in the replica group), summed over the world in fp64; clipping as clip_grad_norm_
// (coef = max_norm / (norm + 1e-6), applied when below 1). The optimizer state is saved in the single-process layout:
// expert moments are gathered over the EP group into (E, ...) tensors, and sliced back on load.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed partial class DataParallelOptimizer
{
    private readonly ExpertParallelism? experts;
    private readonly DataParallelOptimizer? expertPart;   // the routed experts, over the replica group

    private double StepWithExperts(double? maxNorm)
    {
        using var scope = NewDisposeScope();
        var x = expertPart!;
        var withGrad = GradientBuckets.AgreeOnGradients(group, Parameters);
        var mine = all.Select(p => p.Param).ToHashSet(ReferenceEqualityComparer.Instance);
        var (stepped, counted) = Sync(withGrad.Where(p => mine.Contains(p)).ToList());
        var (xStepped, xCounted) = x.Sync(withGrad.Where(p => !mine.Contains(p)).ToList());
        double norm;
        using (no_grad())
        {
            var squares = new[] { SquaredSum(counted) + SquaredSum(xCounted) };
            norm = Math.Sqrt(group.AllReduce(squares)[0]);
            double coef = maxNorm is double max ? max / (norm + 1e-6) : 1;
            if (coef < 1) foreach (var p in stepped.Concat(xStepped)) p.grad!.mul_(coef);
        }
        optimizer.Step();
        x.optimizer.Step();
        if (Stage != ZeroStage.None) GatherParameters();
        if (x.Stage != ZeroStage.None) x.GatherParameters();
        return norm;
    }

    /// <summary>Sums this instance's gradients over its group; returns the parameters this rank steps and those whose
    /// squares it counts towards the global norm (each summed gradient counted on one rank of the group).</summary>
    private (List<Parameter> Stepped, List<Parameter> Counted) Sync(List<Parameter> withGrad)
    {
        if (Stage == ZeroStage.Two)
        {
            ReduceScatterGradients(withGrad);
            var owned = withGrad.Where(p => OwnerOf(p) == group.Rank).ToList();
            return (owned, owned);
        }
        GradientBuckets.AllReduce(group, withGrad, bucketElements);
        return (withGrad, group.Rank == 0 ? withGrad : []);
    }

    private static double SquaredSum(List<Parameter> ps) =>
        ps.Sum(p => p.grad!.to(ScalarType.Float64).square().sum().item<double>());

    // Replicated state as usual, expert state gathered over the replica group (ZeRO) and then over the EP group.
    private Dictionary<string, Tensor> StateDictWithExperts()
    {
        var state = GatheredStateDict();
        foreach (var (key, t) in expertPart!.GatheredStateDict())
        {
            if (t.dim() == 0) { state[key] = t; continue; }        // step counters: the same on every rank
            state[key] = ExpertParallelCheckpoint.Gather(experts!.Experts, t);
            t.Dispose();
        }
        return state;
    }

    private void LoadExpertState(IReadOnlyDictionary<string, Tensor> state, bool sliced)
    {
        using var scope = NewDisposeScope();
        var local = state.Where(kv => ExpertParallelCheckpoint.IsExpert(kv.Key)).ToDictionary(kv => kv.Key,
            kv => kv.Value.dim() == 0 || sliced ? kv.Value : ExpertParallelCheckpoint.Slice(experts!.Experts, kv.Value));
        expertPart!.LoadStateDict(local);
    }
}
