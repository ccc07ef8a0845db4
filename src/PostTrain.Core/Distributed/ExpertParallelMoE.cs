// A DeepSeekMoE layer with its routed experts sharded over an expert-parallel group of P ranks: rank r holds experts
// [r E/P, (r+1) E/P) (gate/up/down stacked as in Experts); the router and the shared experts are replicated. Each rank
// routes its own tokens, then
//   dispatch: token copies sorted by expert (hence by owning rank) go to their experts' ranks (all-to-all with the
//             per-rank row counts; the per-expert counts are exchanged first, also by all-to-all);
//   compute:  received rows regrouped by local expert, one grouped GEMM per projection;
//   combine:  the outputs go back by the reverse all-to-all, are weighted and summed per token as in MoE.
// Both all-to-alls are autograd functions, so backward runs the reverse exchanges. Device-limited routing
// (max_devices_per_token = M < P) restricts each token to experts on at most M ranks. Loads (tokens per expert) are
// this rank's counts; sum them over the group for the aux-loss-free balancer (MoeBalancer does with a group). The
// sequence-wise balance loss is MoE's, per sequence of this rank (the router's scores cover every expert on every rank).
// A rank whose experts receive no rows still joins both reverse all-to-alls in backward (its empty rows stay in the graph).
// Gradients: local experts' gradients are complete within the group; router and shared experts are replicated, so
// their gradients are summed over the ranks like any data-parallel parameter.
using PostTrain.Core.Model;
using PostTrain.Core.Recompute;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed class ExpertParallelMoE : nn.Module<Tensor, Tensor>, IMoeLayer
{
    private readonly Router gate;
    private readonly Experts experts;           // this rank's E/P experts
    private readonly Mlp? shared_experts;
    private readonly ModelConfig c;
    private readonly ProcessGroup ep;
    private Tensor? loads;
    public Tensor? TokenMask { get; set; }

    public int LocalExperts { get; }
    public int FirstExpert => ep.Rank * LocalExperts;

    public ExpertParallelMoE(ModelConfig config, ProcessGroup expertGroup, int maxDevicesPerToken, Device? device = null) : base(nameof(ExpertParallelMoE))
    {
        c = config;
        ep = expertGroup;
        if (c.NRoutedExperts % ep.Size != 0)
            throw new ArgumentException($"n_routed_experts {c.NRoutedExperts} is not divisible by the expert-parallel size {ep.Size}");
        if (maxDevicesPerToken < 1) throw new ArgumentException($"distributed.max_devices_per_token: {maxDevicesPerToken} must be at least 1");
        LocalExperts = c.NRoutedExperts / ep.Size;
        gate = new Router(c, device);
        experts = new Experts(LocalExperts, c.HiddenSize, c.MoeIntermediateSize, device);
        if (c.NSharedExperts > 0) shared_experts = new Mlp(c.HiddenSize, c.MoeIntermediateSize * c.NSharedExperts, device);
        RegisterComponents();
        if (maxDevicesPerToken < ep.Size)
            gate.SelectionFilter = choice => DeviceLimitedRouting.Mask(choice, ep.Size, maxDevicesPerToken, c.NumExpertsPerTok);
    }

    public Router Gate => gate;
    public ProcessGroup ExpertGroup => ep;
    public double BalanceAlpha { get; set; }
    public Tensor? LastBalanceLoss { get; private set; }
    public Experts LocalExpertWeights => experts;
    internal Mlp? SharedExperts => shared_experts;

    /// <summary>Copies a full MoE layer's weights: router, shared experts, and this rank's slice of the experts.</summary>
    public void LoadFrom(MoE full)
    {
        using var noGrad = no_grad();
        gate.Weight.copy_(full.Gate.Weight);
        if (gate.CorrectionBias is { } b) b.copy_(full.Gate.CorrectionBias!);
        experts.GateProj.copy_(full.ExpertWeights.GateProj.narrow(0, FirstExpert, LocalExperts));
        experts.UpProj.copy_(full.ExpertWeights.UpProj.narrow(0, FirstExpert, LocalExperts));
        experts.DownProj.copy_(full.ExpertWeights.DownProj.narrow(0, FirstExpert, LocalExperts));
        if (shared_experts is not null)
            foreach (var ((_, mine), (_, theirs)) in shared_experts.named_parameters().Zip(full.SharedExperts!.named_parameters()))
                mine.copy_(theirs);
    }

    /// <summary>Returns and resets this rank's per-expert token counts (all E experts, from this rank's tokens).</summary>
    public long[] TakeLoads()
    {
        if (loads is null) return new long[c.NRoutedExperts];
        var l = loads.cpu().data<long>().ToArray();
        loads.Dispose();
        loads = null;
        return l;
    }

    /// <summary>x (B, T, H) -> (B, T, H); collective over the expert-parallel group.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], T = x.shape[1], H = x.shape[2];
        int P = ep.Size, El = LocalExperts, k = c.NumExpertsPerTok;
        var flat = x.reshape(B * T, H);                                             // (N, H)
        var (idx, w, scores) = gate.Route(flat);                                    // (N, k), (N, k), (N, E)
        var flatIdx = idx.reshape(-1);                                              // (N*k)
        var order = flatIdx.sort(stable: true).Indices;                             // by expert = by owning rank
        var tokenOf = order.div(k, rounding_mode: RoundingMode.floor);
        var counts = flatIdx.bincount(null, c.NRoutedExperts).cpu();                // (E) rows per expert from this rank
        if (RecomputeTape.Current is not { Replaying: true })   // a recompute replay's tokens were counted by its first pass
            using (no_grad())
            {
                var real = MoE.LoadCounts(counts, flatIdx, TokenMask, k, c.NRoutedExperts);
                if (loads is null) { loads = real.clone(); loads.DetachFromDisposeScope(); }
                else loads.add_(real);
            }
        var hostCounts = counts.data<long>().ToArray();
        var send = Enumerable.Range(0, P).Select(r => hostCounts.Skip(r * El).Take(El).Sum()).ToArray();
        // per-expert counts: rank r gets, from every rank s, how many rows s sends to each of r's experts
        var recvCounts = ep.AllToAllV(counts, Enumerable.Repeat((long)El, P).ToArray(), Enumerable.Repeat((long)El, P).ToArray())
            .data<long>().ToArray();                                                // (P * El): [source][local expert]
        var recv = Enumerable.Range(0, P).Select(s => recvCounts.Skip(s * El).Take(El).Sum()).ToArray();

        var xs = flat.index_select(0, tokenOf);                                     // (N*k, H) sorted by expert
        var xr = AllToAllFunction.Exchange(xs, ep, send, recv);                     // dispatch: (R, H) by source, expert
        var (perm, localCounts) = ByLocalExpert(recvCounts, P, El);
        var permT = tensor(perm, device: x.device);
        var xl = xr.index_select(0, permT);                                         // (R, H) by local expert
        var yl = experts.Forward(xl, tensor(localCounts, device: x.device), x.device_type == DeviceType.CPU ? localCounts : null);
        // no rows for this rank's experts: the expert GEMMs may return rows not connected to xl, and backward would then
        // skip the dispatch's reverse all-to-all that the other ranks run (a hang): keep xl in the graph
        if (xl.shape[0] == 0) yl = yl + xl.sum() * 0;
        var inverse = empty_like(permT).scatter_(0, permT, arange(perm.Length, device: x.device));
        var yr = yl.index_select(0, inverse);                                       // back to (source, expert) order
        var ys = AllToAllFunction.Exchange(yr, ep, recv, send);                     // combine: (N*k, H) sorted by expert
        var wSorted = w.reshape(-1).index_select(0, order).unsqueeze(-1);
        ys = ys * wSorted;
        var routed = zeros(B * T, H, dtype: ys.dtype, device: x.device).index_add(0, tokenOf, ys, 1).to(x.dtype);
        var y = routed.view(B, T, H);
        if (shared_experts is not null) y = y + shared_experts.forward(x);

        MoE.SetBalanceLoss(LastBalanceLoss, l => LastBalanceLoss = l, BalanceAlpha, () => MoE.SequenceBalanceLoss(idx.view(B, T, k), scores.view(B, T, -1), k, BalanceAlpha));
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Received rows are ordered (source rank, local expert); returns the permutation that orders them by
    /// (local expert, source rank) and the row count of each local expert.</summary>
    private static (long[] Perm, long[] Counts) ByLocalExpert(long[] recvCounts, int P, int El)
    {
        var start = new long[P * El];
        for (int i = 1; i < start.Length; i++) start[i] = start[i - 1] + recvCounts[i - 1];
        var perm = new List<long>();
        var local = new long[El];
        for (int e = 0; e < El; e++)
            for (int s = 0; s < P; s++)
            {
                long n = recvCounts[s * El + e];
                for (long j = 0; j < n; j++) perm.Add(start[s * El + e] + j);
                local[e] += n;
            }
        return (perm.ToArray(), local);
    }
}
