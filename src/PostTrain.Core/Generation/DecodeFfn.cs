// The feed-forward half of a block for generation, added into the block's residual in place. Dense SwiGLU MLPs use the
// cached compute-dtype weights. MoE layers, for small token counts (every decode step), run ALL experts on every token
// as two GEMMs and weight them by the routing weights (zero for unchosen experts): no host sync, no per-expert loop,
// the same weights read as the routed path at decode batch sizes. The shared experts ride in the same two GEMMs as
// extra "experts" of routing weight 1 (the shared MLP's intermediate is n_shared x moe_intermediate, and SwiGLU is
// independent per intermediate unit), and a dense MLP is one such expert: gate|up as one GEMM, SiLU x up x weight as
// one kernel (DecodeKernels.CombineSilu), down as one GEMM accumulating into the residual. Larger inputs (long
// prefills) take the model's grouped routed path (one host sync per layer; it also counts the tokens in the MoE load
// statistics).
using PostTrain.Core.Kernels;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal static class DecodeFfn
{
    /// <summary>x (B, T, H) normed input -> residual + ffn(x), (B, T, H), written into <paramref name="residual"/>'s
    /// storage (the block's hidden state after attention, not read again); returns a handle to it.</summary>
    public static Tensor Forward(nn.Module<Tensor, Tensor> ffn, InferenceWeights w, ModelConfig c, Tensor x, Tensor residual, long denseMoeMaxElements)
    {
        return ffn switch
        {
            Mlp m => Dense(m, w, x, residual),
            MoE moe => (long)x.shape[0] * x.shape[1] * c.NRoutedExperts * c.MoeIntermediateSize <= denseMoeMaxElements
                ? AllExperts(moe, w, c, x, residual)
                : residual.add_(moe.forward(x).to(x.dtype)).alias(),
            _ => throw new InvalidOperationException($"unknown ffn module {ffn.GetType().Name}"),
        };
    }

    /// <summary>residual += down(silu(gate x) * up x), x (B, T, H): gate|up as one GEMM, the fused SiLU-multiply, down
    /// accumulated into the residual.</summary>
    public static Tensor Dense(Mlp m, InferenceWeights w, Tensor x, Tensor residual)
    {
        using var scope = NewDisposeScope();
        long N = x.numel() / x.shape[^1], I = m.GateProj.Weight.shape[0];
        if (m.GateProj.Bias is not null || m.UpProj.Bias is not null)                  // not a DeepSeek MLP: the plain ops
            return AbsorbedAttention.LinAdd(w, m.DownProj, FusedOps.SiluMul(AbsorbedAttention.Lin(w, m.GateProj, x),
                AbsorbedAttention.Lin(w, m.UpProj, x)), residual).MoveToOuterDisposeScope();
        var key = $"{m.GateProj.Weight.Handle}.mlp";
        var gateUp = w.Derived(key + ".gateup", () => cat([w[m.GateProj.Weight], w[m.UpProj.Weight]], 0));   // (2I, H): [gate; up]
        var down = w.Derived(key + ".down", () => w[m.DownProj.Weight].t());                                // (I, H)
        var (idx, ones) = UnitSlots(w, N, 0, 1, x.device);
        return Stacked(x.reshape(N, x.shape[^1]), gateUp, down, 1, I, idx, ones, residual, w.Optional(m.DownProj.Bias)).MoveToOuterDisposeScope();
    }

    /// <summary>residual += sum_e weight_e(x) * expert_e(x) over all experts, plus shared experts, x (B, T, H).</summary>
    public static Tensor AllExperts(MoE moe, InferenceWeights w, ModelConfig c, Tensor x, Tensor residual)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], T = x.shape[1], H = x.shape[2], N = B * T;
        int E = c.NRoutedExperts, I = c.MoeIntermediateSize;
        var flat = x.reshape(N, H);                                                   // (N, H)
        var (idx, rw, _) = moe.Gate.Route(flat);                                      // (N, k), (N, k) fp32

        var ex = moe.ExpertWeights;
        if (ex.GateProj.numel() * 3 * ex.GateProj.ElementSize > StackedCopyMaxBytes)
            return AllExpertsInPlace(moe, w, c, x, flat, ReferenceDecodeKernels.Combine(idx, rw, E), residual).MoveToOuterDisposeScope();
        // the shared MLP as n_shared more experts of I units each, when it has no bias and that shape
        var shared = moe.SharedExperts;
        int ns = shared is { } sm && sm.GateProj.Bias is null && sm.UpProj.Bias is null && sm.DownProj.Bias is null
            && sm.GateProj.Weight.shape[0] % I == 0 ? (int)(sm.GateProj.Weight.shape[0] / I) : 0;
        var gateUp = w.Derived($"{ex.GateProj.Handle}.gateup{ns}", () =>             // ((E+ns)*2I, H): per expert [gate; up]
        {
            var routed = cat([w[ex.GateProj], w[ex.UpProj]], 1).reshape(E * 2 * I, H);
            if (ns == 0) return routed;
            var sg = w[shared!.GateProj.Weight].view(ns, I, H);
            var su = w[shared.UpProj.Weight].view(ns, I, H);
            return cat([routed, cat([sg, su], 1).reshape(ns * 2 * I, H)], 0);
        });
        var down = w.Derived($"{ex.DownProj.Handle}.down{ns}", () =>                 // ((E+ns)*I, H): experts stacked along I
        {
            var routed = w[ex.DownProj].transpose(1, 2).reshape(E * I, H);
            return ns == 0 ? routed : cat([routed, w[shared!.DownProj.Weight].t()], 0);
        });
        if (ns > 0)
        {
            var (sIdx, sOnes) = UnitSlots(w, N, E, ns, x.device);
            idx = cat([idx, sIdx], 1);
            rw = cat([rw, sOnes], 1);
        }
        var outp = Stacked(flat, gateUp, down, E + ns, I, idx, rw, residual);
        if (ns == 0 && shared is { } s) outp = Dense(s, w, x, outp);
        return outp.MoveToOuterDisposeScope();
    }

    /// <summary>residual += (silu(g) * u * weight) down over <paramref name="slots"/> stacked experts: flat (N, H),
    /// gateUp (slots*2I, H), down (slots*I, H), idx/weights (N, k) the chosen slots and their weights.</summary>
    private static Tensor Stacked(Tensor flat, Tensor gateUp, Tensor down, long slots, long I, Tensor idx, Tensor weights,
        Tensor residual, Tensor? bias = null)
    {
        long N = flat.shape[0];
        var gu = nn.functional.linear(flat, gateUp).view(N, slots, 2, I);            // (N, slots, 2, I)
        var hdn = DecodeKernels.Pick(gu, () => DecodeKernels.CombineFits(gu, idx, weights)).CombineSilu(gu, idx, weights); // (N, slots, I)
        return AbsorbedAttention.MatmulAdd(hdn.view(N, slots * I), down, residual, bias);
    }

    /// <summary>Slots first..first+count-1 with weight 1 for each of N rows: (N, count) int64 and fp32, built once per
    /// Generate call and row count (so a captured step reads the same tensors its warm-up built).</summary>
    private static (Tensor Indices, Tensor Ones) UnitSlots(InferenceWeights w, long n, long first, long count, Device device) =>
        (w.Derived($"slots.{n}.{first}.{count}", () => arange(first, first + count, dtype: ScalarType.Int64, device: device).expand(n, count)),
         w.Derived($"ones.{n}.{count}", () => ones(n, count, dtype: ScalarType.Float32, device: device)));

    /// <summary>Routed experts larger than this (all three projections of a layer, in bytes) are read in place by
    /// AllExperts instead of through a stacked copy: a 16B model's copies would take 29 GB beside the weights.</summary>
    internal static long StackedCopyMaxBytes { get; set; } = 256L << 20;

    // AllExperts without copying the expert weights: gate and up as (E*I, H) views, down through one batched GEMM over
    // the experts' transposed (E, I, H) views, summed over experts.
    private static Tensor AllExpertsInPlace(MoE moe, InferenceWeights w, ModelConfig c, Tensor x, Tensor flat, Tensor combine, Tensor residual)
    {
        long N = flat.shape[0], H = flat.shape[1];
        int E = c.NRoutedExperts, I = c.MoeIntermediateSize;
        var ex = moe.ExpertWeights;
        var g = nn.functional.linear(flat, w[ex.GateProj].reshape(E * I, H)).view(N, E, I);   // views of (E, I, H)
        var u = nn.functional.linear(flat, w[ex.UpProj].reshape(E * I, H)).view(N, E, I);
        var hdn = FusedOps.SiluMul(g, u) * combine.to(x.dtype).unsqueeze(-1);                  // (N, E, I)
        var y = bmm(hdn.transpose(0, 1), w[ex.DownProj].transpose(1, 2)).sum(0L);              // (E, N, I) x (E, I, H) -> (N, H)
        var outp = residual.add_(y.view(residual.shape)).alias();
        if (moe.SharedExperts is { } shared) outp = Dense(shared, w, x, outp);
        return outp;
    }
}
