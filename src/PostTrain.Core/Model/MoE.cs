// DeepSeekMoE layer: routed experts (fine-grained SwiGLU experts, weights stacked as (E, out, in)) plus shared experts
// that every token uses. Tokens are grouped per expert (one sort), the experts run as grouped GEMMs
// (ExpertCompute), the outputs are weighted and scattered back. Records per-expert token counts for the
// aux-loss-free balancer and, when asked, the sequence-wise balance loss.
using PostTrain.Core.Kernels;
using PostTrain.Core.Recompute;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

/// <summary>Routed expert weights stacked per expert; the checkpoint layer splits them into
/// mlp.experts.{e}.{gate,up,down}_proj.weight as Hugging Face writes them.</summary>
public sealed class Experts : nn.Module<Tensor, Tensor>
{
    private readonly Parameter gate_proj;   // (E, I, H)
    private readonly Parameter up_proj;     // (E, I, H)
    private readonly Parameter down_proj;   // (E, H, I)

    public Experts(int experts, int hidden, int intermediate, Device? device = null) : base(nameof(Experts))
    {
        gate_proj = nn.Parameter(empty(experts, intermediate, hidden, device: device));
        up_proj = nn.Parameter(empty(experts, intermediate, hidden, device: device));
        down_proj = nn.Parameter(empty(experts, hidden, intermediate, device: device));
        RegisterComponents();
    }

    public PostTrain.Core.Precision.Precision Precision { get; set; }

    /// <summary>The model's hidden size (each expert's input and output width).</summary>
    public int Hidden => (int)down_proj.shape[1];
    /// <summary>Each expert's intermediate size.</summary>
    public int Intermediate => (int)gate_proj.shape[1];

    /// <summary>Grouped LoRA adapters on the three projections (owned by a LoraAdapters container), or null.</summary>
    public GroupedLoraAdapter? GateLora { get; set; }
    public GroupedLoraAdapter? UpLora { get; set; }
    public GroupedLoraAdapter? DownLora { get; set; }

    /// <summary>Whether RecomputedExperts computes these experts: bf16 or fp32 GEMMs without adapters.</summary>
    internal bool Recomputable => Precision != PostTrain.Core.Precision.Precision.Fp8 && GateLora is null && UpLora is null && DownLora is null;

    public Parameter GateProj => gate_proj;
    public Parameter UpProj => up_proj;
    public Parameter DownProj => down_proj;

    public override Tensor forward(Tensor x) => throw new InvalidOperationException("call Forward(xSorted, counts)");

    /// <summary>xSorted (N*k, H) grouped by expert, counts (E) rows each (hostCounts: the same on the host, or null) -> (N*k, H).</summary>
    public Tensor Forward(Tensor xSorted, Tensor counts, long[]? hostCounts)
    {
        // FP8 with the native kernels and no adapters: the whole FFN in one function and one padded layout.
        if (Precision == PostTrain.Core.Precision.Precision.Fp8 && PostTrain.Core.Precision.Fp8.FusedExperts && GateLora is null && UpLora is null && DownLora is null
            && Kernels.Fp8Kernels.For(xSorted) is { } fp8)
            return PostTrain.Core.Precision.Fp8.ExpertsFp8(xSorted, gate_proj, up_proj, down_proj, counts, fp8, Kernels.FusedKernels.For(xSorted));
        using var scope = NewDisposeScope();
        var g = ExpertCompute.GroupedLinear(xSorted, gate_proj, counts, hostCounts, Precision);   // (N*k, I)
        var u = ExpertCompute.GroupedLinear(xSorted, up_proj, counts, hostCounts, Precision);
        if (GateLora is { } gl) g = g + gl.Forward(xSorted, counts, hostCounts).to(g.dtype);
        if (UpLora is { } ul) u = u + ul.Forward(xSorted, counts, hostCounts).to(u.dtype);
        var h = FusedOps.SiluMul(g, u);
        var y = ExpertCompute.GroupedLinear(h, down_proj, counts, hostCounts, Precision);           // (N*k, H)
        if (DownLora is { } dl) y = y + dl.Forward(h, counts, hostCounts).to(y.dtype);
        return y.MoveToOuterDisposeScope();
    }
}

public sealed class MoE : nn.Module<Tensor, Tensor>, IMoeLayer
{
    private readonly Router gate;
    private readonly Experts experts;
    private readonly Mlp? shared_experts;
    private readonly ModelConfig c;

    /// <summary>Tokens routed to each expert since the last <see cref="TakeLoads"/> (on the model's device: no host sync per layer).</summary>
    private Tensor? loads;
    /// <summary>Sequence-wise balance loss of the last forward when <see cref="BalanceAlpha"/> > 0, else null.</summary>
    public Tensor? LastBalanceLoss { get; private set; }
    public double BalanceAlpha { get; set; }

    public MoE(ModelConfig config, Device? device = null) : base(nameof(MoE))
    {
        c = config;
        gate = new Router(c, device);
        experts = new Experts(c.NRoutedExperts, c.HiddenSize, c.MoeIntermediateSize, device);
        if (c.NSharedExperts > 0) shared_experts = new Mlp(c.HiddenSize, c.MoeIntermediateSize * c.NSharedExperts, device);
        RegisterComponents();
    }

    public Router Gate => gate;
    public Experts ExpertWeights => experts;
    internal Mlp? SharedExperts => shared_experts;

    public Tensor? TokenMask { get; set; }

    /// <summary>The per-expert counts the balancer sees: <paramref name="counts"/> (every routed row) when no token mask
    /// is set, else the rows of the tokens the mask keeps (a scatter-add on the device, no host sync). flatIdx (N*k) is
    /// token-major: token n's k choices are rows n*k .. n*k+k-1.</summary>
    internal static Tensor LoadCounts(Tensor counts, Tensor flatIdx, Tensor? tokenMask, int k, int experts)
    {
        if (tokenMask is null) return counts;
        var keep = tokenMask.to(ScalarType.Int64).to(flatIdx.device).unsqueeze(1).expand(-1, k).reshape(-1);    // (N*k)
        return zeros(experts, dtype: ScalarType.Int64, device: flatIdx.device).scatter_add_(0, flatIdx, keep).to(counts.device);
    }

    /// <summary>Returns and resets the per-expert token counts accumulated since the last call.</summary>
    public long[] TakeLoads()
    {
        if (loads is null) return new long[c.NRoutedExperts];
        var l = loads.cpu().data<long>().ToArray();
        using (no_grad()) loads.zero_();   // kept (zeroed), not freed: a captured training step adds into this buffer
        return l;
    }

    /// <summary>x (B, T, H) -> (B, T, H).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], T = x.shape[1], H = x.shape[2];
        var flat = x.reshape(B * T, H);                                             // (N, H)
        var (idx, w, scores) = gate.Route(flat);                                    // (N, k), (N, k), (N, E)
        int k = c.NumExpertsPerTok;
        var flatIdx = idx.reshape(-1);                                              // (N*k)
        var order = flatIdx.sort(stable: true).Indices;                                  // (N*k)
        var tokenOf = order.div(k, rounding_mode: RoundingMode.floor);              // (N*k) source token of each row
        // (E) int64 on x's device; a scatter-add, not bincount: CUDA's bincount reads max(idx) back to the host
        var counts = zeros(c.NRoutedExperts, dtype: ScalarType.Int64, device: x.device).scatter_add_(0, flatIdx, ones_like(flatIdx));
        long[]? hostCounts = x.device_type == DeviceType.CPU ? counts.data<long>().ToArray() : null;
        if (RecomputeTape.Current is not { Replaying: true })   // a recompute replay's tokens were counted by its first pass
            using (no_grad())
            {
                var real = LoadCounts(counts, flatIdx, TokenMask, k, c.NRoutedExperts);
                if (loads is null) { loads = real.clone(); loads.DetachFromDisposeScope(); }
                else loads.add_(real);
            }

        // On CUDA the dispatch's backward and the weighted combine are per-token gathers in fused kernels
        // (Kernels.TrainKernels: fp32 sums, no atomics, no fp32 (N*k, H) product); else HF's ops.
        var fused = TrainKernels.For(flat) is { } tk && TrainKernels.MoeFits(flat, w, k) ? tk : null;
        var pos = fused is null ? null : TrainOps.InverseOrder(order, B * T, k);   // (N, k) row of each choice
        Tensor ys;                                                                  // (N*k, H)
        if (pos is not null && experts.Recomputable && is_grad_enabled() && RecomputedExperts.For(flat) is { } gemms)
            // one function that gathers xs and recomputes it and the SwiGLU output in backward instead of saving them
            ys = RecomputedExperts.Apply(flat, tokenOf, pos, experts.GateProj, experts.UpProj, experts.DownProj, counts, gemms,
                FusedKernels.For(flat) ?? ReferenceFusedKernels.Instance, fused!);
        else
        {
            var xs = pos is null ? flat.index_select(0, tokenOf) : TrainOps.Dispatch(flat, tokenOf, pos, fused!);   // (N*k, H)
            ys = experts.Forward(xs, counts, hostCounts);
        }
        Tensor routed;
        if (pos is not null && ys.dtype == x.dtype)
            routed = TrainOps.Combine(ys, w, pos, fused!);                          // (N, H)
        else
        {
            var wSorted = w.reshape(-1).index_select(0, order).unsqueeze(-1);       // (N*k, 1) fp32
            ys = ys * wSorted;                                                      // promotes to fp32 like HF
            routed = zeros(B * T, H, dtype: ys.dtype, device: x.device).index_add(0, tokenOf, ys, 1).to(x.dtype);
        }
        var y = routed.view(B, T, H);
        if (shared_experts is not null) y = y + shared_experts.forward(x);

        SetBalanceLoss(LastBalanceLoss, l => LastBalanceLoss = l, BalanceAlpha, () => SequenceBalanceLoss(idx.view(B, T, k), scores.view(B, T, -1), k, BalanceAlpha));
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>A forward's balance-loss bookkeeping (shared with ExpertParallelMoE): the previous loss is dropped and, when
    /// alpha > 0 and autograd records, the new one kept outside every dispose scope. Inside a recompute region (autograd
    /// off in its first pass) the loss is a side output of the region, so it reaches the loss through the region's node;
    /// the replay in backward leaves the kept loss alone.</summary>
    internal static void SetBalanceLoss(Tensor? previous, Action<Tensor?> set, double alpha, Func<Tensor> compute)
    {
        var tape = RecomputeTape.Current;
        if (tape is not { Replaying: true })
        {
            previous?.Dispose();
            set(null);
        }
        if (alpha <= 0 || (tape is null && !is_grad_enabled())) return;
        var loss = compute();
        if (tape is null) set(loss.DetachFromDisposeScope());
        else tape.SideOutput(loss, l => set(l.DetachFromDisposeScope()));
    }

    /// <summary>L = alpha * sum_i f_i P_i per sequence, averaged over sequences; f_i = E/(k T) * count_i,
    /// P_i = mean over the sequence of s_i / sum_j s_j.</summary>
    internal static Tensor SequenceBalanceLoss(Tensor idx /*(B,T,k)*/, Tensor scores /*(B,T,E)*/, int k, double alpha)
    {
        long B = idx.shape[0], T = idx.shape[1], E = scores.shape[2];
        var counts = zeros(B, E, device: idx.device).scatter_add_(1, idx.view(B, -1), ones(B, T * k, device: idx.device)); // (B, E)
        var f = counts * ((double)E / (k * T));
        var p = (scores / scores.sum(-1, keepdim: true)).mean([1L]);                // (B, E)
        return (f * p).sum(-1).mean() * alpha;
    }
}
