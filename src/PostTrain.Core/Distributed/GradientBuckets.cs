// Data-parallel gradient synchronisation: gradients are summed over the ranks in buckets (several parameters'
// gradients flattened into one buffer, one all-reduce per bucket), as DDP does. Recipes normalise their loss by the
// global token count, so the sum (not the mean) over ranks is the gradient of the global batch.
// AllReduce here runs after backward; DataParallelOptimizer.EnableOverlap starts the decoder layers' buckets during
// backward instead (OverlappedBuckets, signalled by GradientReadyFunction: TorchSharp 0.107 has no tensor hooks).
// A parameter whose gradient exists on some ranks only (an expert no local token chose) gets a zero gradient on the
// others; one without a gradient on every rank keeps none, so AdamW skips it exactly as in a single process.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public static class GradientBuckets
{
    /// <summary>Default bucket size: 25 MiB of fp32 (DDP's default bucket_cap_mb).</summary>
    public const long DefaultBucketElements = 25L * 1024 * 1024 / 4;

    /// <summary>Makes "has a gradient" agree over the ranks (see the header); returns the parameters that have one.</summary>
    public static List<Parameter> AgreeOnGradients(ProcessGroup group, IReadOnlyList<Parameter> parameters)
    {
        var has = parameters.Select(p => p.grad is null ? 0L : 1L).ToArray();
        var any = group.AllReduce(has, ReduceOp.Max);
        var result = new List<Parameter>();
        for (int i = 0; i < parameters.Count; i++)
        {
            if (any[i] == 0) continue;
            if (has[i] == 0) MaterializeZeroGrad(parameters[i]);
            result.Add(parameters[i]);
        }
        return result;
    }

    /// <summary>Sums every gradient over the ranks, bucketed by device and dtype, bucketElements at most per bucket
    /// (a larger gradient is its own bucket).</summary>
    public static void AllReduce(ProcessGroup group, IReadOnlyList<Parameter> withGrads, long bucketElements = DefaultBucketElements)
    {
        if (group.Size == 1) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var bucket in Buckets(withGrads, bucketElements))
        {
            using var inner = NewDisposeScope();
            var flat = cat(bucket.Select(p => p.grad!.reshape(-1)).ToList(), 0);
            group.AllReduce(flat);
            long at = 0;
            foreach (var p in bucket)
            {
                long n = p.grad!.numel();
                p.grad!.copy_(flat.narrow(0, at, n).view(p.grad!.shape));
                at += n;
            }
        }
    }

    /// <summary>Consecutive parameters (reverse order: the last layers' gradients first, as DDP) grouped into buckets.</summary>
    public static IEnumerable<List<Parameter>> Buckets(IReadOnlyList<Parameter> ps, long bucketElements)
    {
        var current = new List<Parameter>();
        long size = 0;
        foreach (var p in ps.Reverse())
        {
            bool sameKind = current.Count == 0 || (current[0].dtype == p.dtype && current[0].device_type == p.device_type && current[0].device_index == p.device_index);
            if (current.Count > 0 && (!sameKind || size + p.numel() > bucketElements))
            {
                yield return current;
                current = [];
                size = 0;
            }
            current.Add(p);
            size += p.numel();
        }
        if (current.Count > 0) yield return current;
    }

    /// <summary>Gives p a zero gradient through autograd (TorchSharp cannot assign .grad directly).</summary>
    internal static void MaterializeZeroGrad(Parameter p)
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        (p.sum() * 0).backward();
    }
}
