// Grouped expert LoRA <-> peft's LoRA on a fused 3-D expert parameter (PeftLayout.FusedExperts), exactly.
// peft's ParamWrapper on a parameter (E, out, in) holds A (R*E, in) and B (out, R*E) and computes, per expert e,
//   delta_e = scale * sum_k B[:, k*E + e] A[e*R + k, :]          (A viewed (E, R, in), B viewed (out, R, E))
// PostTrain keeps n projections that transformers fuses along `out` (gate and up: n = 2; down: n = 1) as separate
// adapters A_j (E, r, in), B_j (E, out_j, r). With R = n*r the fused pair
//   A[e*R + j*r + k]    = A_j[e, k]                               (expert-major, then projection, then rank)
//   B[o_j + i, (j*r + k)*E + e] = B_j[e, i, k], zero off the diagonal blocks (o_j = out_0 + ... + out_{j-1})
// gives delta_e = [B_0e A_0e; B_1e A_1e; ...] * scale: each projection's own update, nothing across projections.
// Split is the inverse; it refuses a B whose off-diagonal blocks are not zero (an adapter trained fused by peft, whose
// gate and up updates share ranks, has no exact separate form).
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public static class FusedExpertLora
{
    /// <summary>A_j (E, r, in) each -> (E*n*r, in).</summary>
    public static Tensor FuseA(IReadOnlyList<Tensor> a)
    {
        using var scope = NewDisposeScope();
        var cat = torch.cat(a.ToArray(), 1);                                        // (E, n*r, in), a copy
        return cat.reshape(-1, cat.shape[2]).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>B_j (E, out_j, r) each -> (sum out_j, n*r*E), block-diagonal per expert, rank-major columns.</summary>
    public static Tensor FuseB(IReadOnlyList<Tensor> b)
    {
        using var scope = NewDisposeScope();
        long experts = b[0].shape[0], r = b[0].shape[2], outs = b.Sum(x => x.shape[1]);
        var block = zeros([experts, outs, b.Count * r], b[0].dtype, b[0].device);     // (E, out, n*r)
        long row = 0;
        for (int j = 0; j < b.Count; j++)
        {
            block[TensorIndex.Colon, TensorIndex.Slice(row, row + b[j].shape[1]), TensorIndex.Slice(j * r, (j + 1) * r)].copy_(b[j]);
            row += b[j].shape[1];
        }
        return block.permute(2, 0, 1).reshape(-1, outs).t().contiguous().MoveToOuterDisposeScope();   // (out, n*r*E)
    }

    /// <summary>(E*n*r, in) -> n tensors (E, r, in).</summary>
    public static Tensor[] SplitA(Tensor a, long experts, int n)
    {
        using var scope = NewDisposeScope();
        var parts = a.reshape(experts, -1, a.shape[1]).chunk(n, 1);
        return parts.Select(p => p.contiguous().MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>(sum out_j, n*r*E) -> B_j (E, out_j, r); null when an off-diagonal block is not zero.</summary>
    public static Tensor[]? SplitB(Tensor b, long experts, IReadOnlyList<long> outs)
    {
        using var scope = NewDisposeScope();
        var block = b.reshape(b.shape[0], -1, experts).permute(2, 0, 1).clone();    // (E, out, n*r)
        long r = block.shape[2] / outs.Count, row = 0;
        var parts = new Tensor[outs.Count];
        for (int j = 0; j < outs.Count; j++)
        {
            var diag = block[TensorIndex.Colon, TensorIndex.Slice(row, row + outs[j]), TensorIndex.Slice(j * r, (j + 1) * r)];
            parts[j] = diag.clone();
            diag.zero_();
            row += outs[j];
        }
        if (block.count_nonzero().item<long>() != 0) return null;
        return parts.Select(p => p.MoveToOuterDisposeScope()).ToArray();
    }
}
