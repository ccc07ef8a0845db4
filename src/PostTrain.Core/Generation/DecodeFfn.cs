// The feed-forward half of a block for generation. Dense SwiGLU MLPs use the cached compute-dtype weights. MoE
// layers, for small token counts (every decode step), run ALL experts on every token as two GEMMs and
// weight them by the routing weights (zero for unchosen experts): no host sync, no per-expert loop, the same
// weights read as the routed path at decode batch sizes. Larger inputs (long prefills) take the model's grouped
// routed path (one host sync per layer; it also counts the tokens in the MoE load statistics).
using PostTrain.Core.Kernels;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal static class DecodeFfn
{
    public static Tensor Forward(nn.Module<Tensor, Tensor> ffn, InferenceWeights w, ModelConfig c, Tensor x, long denseMoeMaxElements)
    {
        return ffn switch
        {
            Mlp m => Dense(m, w, x),
            MoE moe => (long)x.shape[0] * x.shape[1] * c.NRoutedExperts * c.MoeIntermediateSize <= denseMoeMaxElements
                ? AllExperts(moe, w, c, x)
                : moe.forward(x).to(x.dtype),
            _ => throw new InvalidOperationException($"unknown ffn module {ffn.GetType().Name}"),
        };
    }

    /// <summary>x (B, T, H) -> (B, T, H): down(silu(gate x) * up x).</summary>
    public static Tensor Dense(Mlp m, InferenceWeights w, Tensor x)
    {
        using var scope = NewDisposeScope();
        var g = AbsorbedAttention.Lin(w, m.GateProj, x);
        var u = AbsorbedAttention.Lin(w, m.UpProj, x);
        return AbsorbedAttention.Lin(w, m.DownProj, FusedOps.SiluMul(g, u)).MoveToOuterDisposeScope();
    }

    /// <summary>x (B, T, H) -> (B, T, H): sum_e weight_e(x) * expert_e(x) over all experts, plus shared experts.</summary>
    public static Tensor AllExperts(MoE moe, InferenceWeights w, ModelConfig c, Tensor x)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], T = x.shape[1], H = x.shape[2], N = B * T;
        int E = c.NRoutedExperts, I = c.MoeIntermediateSize;
        var flat = x.reshape(N, H);                                                   // (N, H)
        var (idx, rw, _) = moe.Gate.Route(flat);                                      // (N, k), (N, k) fp32

        var ex = moe.ExpertWeights;
        if (ex.GateProj.numel() * 3 * ex.GateProj.ElementSize > StackedCopyMaxBytes)
            return AllExpertsInPlace(moe, w, c, x, flat, ReferenceDecodeKernels.Combine(idx, rw, E)).MoveToOuterDisposeScope();
        var gateUp = w.Derived($"{ex.GateProj.Handle}.gateup", () =>                  // (E*2I, H): per expert [gate; up]
            cat([w[ex.GateProj], w[ex.UpProj]], 1).reshape(E * 2 * I, H));
        var down = w.Derived($"{ex.DownProj.Handle}.down", () =>                     // (E*I, H): experts stacked along I
            w[ex.DownProj].transpose(1, 2).reshape(E * I, H));
        var gu = nn.functional.linear(flat, gateUp).view(N, E, 2, I);                 // (N, E, 2, I)
        var hdn = DecodeKernels.Pick(gu, () => DecodeKernels.CombineFits(gu, idx, rw)).CombineSilu(gu, idx, rw); // (N, E, I) = silu(g) u w_e
        var y = matmul(hdn.reshape(N, E * I), down);                                  // (N, H): sums over experts
        var outp = y.view(B, T, H);
        if (moe.SharedExperts is { } shared) outp = outp + Dense(shared, w, x);
        return outp.MoveToOuterDisposeScope();
    }

    /// <summary>Routed experts larger than this (all three projections of a layer, in bytes) are read in place by
    /// AllExperts instead of through a stacked copy: a 16B model's copies would take 29 GB beside the weights.</summary>
    internal static long StackedCopyMaxBytes { get; set; } = 256L << 20;

    // AllExperts without copying the expert weights: gate and up as (E*I, H) views, down through one batched GEMM over
    // the experts' transposed (E, I, H) views, summed over experts.
    private static Tensor AllExpertsInPlace(MoE moe, InferenceWeights w, ModelConfig c, Tensor x, Tensor flat, Tensor combine)
    {
        long B = x.shape[0], T = x.shape[1], H = x.shape[2], N = B * T;
        int E = c.NRoutedExperts, I = c.MoeIntermediateSize;
        var ex = moe.ExpertWeights;
        var g = nn.functional.linear(flat, w[ex.GateProj].reshape(E * I, H)).view(N, E, I);   // views of (E, I, H)
        var u = nn.functional.linear(flat, w[ex.UpProj].reshape(E * I, H)).view(N, E, I);
        var hdn = FusedOps.SiluMul(g, u) * combine.to(x.dtype).unsqueeze(-1);                  // (N, E, I)
        var y = bmm(hdn.transpose(0, 1), w[ex.DownProj].transpose(1, 2)).sum(0L);              // (E, N, I) x (E, I, H) -> (N, H)
        var outp = y.view(B, T, H);
        if (moe.SharedExperts is { } shared) outp = outp + Dense(shared, w, x);
        return outp;
    }
}
