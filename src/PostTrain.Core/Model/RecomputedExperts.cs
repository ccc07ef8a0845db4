// The routed experts' SwiGLU FFN as one autograd function that keeps less for backward: y = down(silu(gate(xs)) *
// up(xs)) with xs = x gathered into expert order. The composition of ops (dispatch, three grouped linears, SwiGLU)
// saves xs (R = N k rows of H) for the gate and up weight gradients and h = silu(g) * u (R x I) for the down weight
// gradient. This function saves neither: backward gathers xs again from x (which the layer keeps anyway: its normed
// input feeds the router and the shared experts) and recomputes h from g and u (which the SwiGLU backward needs
// anyway). That is what torch.compile's partitioner does with cheap ops: at bench-moe (8,192 tokens, k 4, H 768,
// I 384) 9 KB per token and MoE layer, ~0.5 GB over its 7 MoE layers; at the 16B model's shape (k 6, H 2,048,
// I 1,408) 41 KB per token and layer. The cost is one gather and one SwiGLU forward per layer in backward.
//   forward   xs = x[tokenOf]; g = G(xs, Wg); u = G(xs, Wu); ys = G(silu(g) u, Wd)          G: grouped x W_e^T
//   backward  xs, h again; dh = dys Wd_e; dWd = dys_e^T h_e; (dg, du) = SwiGLU'(dh; g, u);
//             dxs = dg Wg_e + du Wu_e; dWg = dg_e^T xs_e; dWu = du_e^T xs_e; dx = per-token sum of dxs over pos
// The grouped GEMMs come from an IGroupedGemms: torch._grouped_mm on CUDA (checked once per device against the
// per-expert loop, an empty expert included, before first use; a failure keeps the plain composition), the loop
// elsewhere. Used by MoE on CUDA when the training kernels are on, without LoRA or FP8 (MoE.forward).
using PostTrain.Core.Kernels;
using PostTrain.Core.Precision;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Model;

/// <summary>The three grouped GEMMs of an expert FFN over rows sorted by expert (counts (E) rows each). The groups
/// are described once per layer (<see cref="Groups"/>) and passed to every GEMM of its forward and backward.</summary>
internal interface IGroupedGemms
{
    /// <summary>The groups as the GEMMs read them, from counts (E) integer on the rows' device.</summary>
    Tensor Groups(Tensor counts);

    /// <summary>a (R, K), w (E, N, K) -> (R, N): each expert's rows times its W^T.</summary>
    Tensor Forward(Tensor a, Tensor w, Tensor groups);

    /// <summary>dy (R, N), w (E, N, K) -> (R, K): each expert's rows times its W.</summary>
    Tensor Dgrad(Tensor dy, Tensor w, Tensor groups);

    /// <summary>dy (R, N), a (R, K) -> (E, N, K): per expert, dy_e^T a_e (zeros for an expert without rows).</summary>
    Tensor Wgrad(Tensor dy, Tensor a, Tensor groups);
}

/// <summary>The per-expert loop (groups: the counts on the host, read once): the reference, and the CPU path.</summary>
internal sealed class LoopGroupedGemms : IGroupedGemms
{
    public static readonly LoopGroupedGemms Instance = new();

    public Tensor Groups(Tensor counts) => counts.to(ScalarType.Int64).cpu();

    public Tensor Forward(Tensor a, Tensor w, Tensor groups) => Rows(a, groups, w.shape[1], (ae, e) => ae.mm(w[e].t()));

    public Tensor Dgrad(Tensor dy, Tensor w, Tensor groups) => Rows(dy, groups, w.shape[2], (de, e) => de.mm(w[e]));

    public Tensor Wgrad(Tensor dy, Tensor a, Tensor groups)
    {
        using var scope = NewDisposeScope();
        var c = groups.data<long>().ToArray();
        var dw = zeros(c.Length, dy.shape[1], a.shape[1], dtype: dy.dtype, device: dy.device);
        long offset = 0;
        for (int e = 0; e < c.Length; e++)
        {
            if (c[e] > 0) dw[e].copy_(dy.narrow(0, offset, c[e]).t().mm(a.narrow(0, offset, c[e])));
            offset += c[e];
        }
        return dw.MoveToOuterDisposeScope();
    }

    private static Tensor Rows(Tensor x, Tensor groups, long width, Func<Tensor, int, Tensor> f)
    {
        using var scope = NewDisposeScope();
        var c = groups.data<long>().ToArray();
        var y = empty(x.shape[0], width, dtype: x.dtype, device: x.device);
        long offset = 0;
        for (int e = 0; e < c.Length; e++)
        {
            if (c[e] > 0) y.narrow(0, offset, c[e]).copy_(f(x.narrow(0, offset, c[e]), e));
            offset += c[e];
        }
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>torch._grouped_mm with the counts' running sums as group ends (no host sync: capturable), for the
/// activation dtypes its self-check passed in.</summary>
internal sealed class TorchGroupedGemms(IReadOnlySet<ScalarType> dtypes) : IGroupedGemms
{
    public static readonly TorchGroupedGemms Unchecked = new(new HashSet<ScalarType> { ScalarType.Float32, ScalarType.BFloat16 });

    public IReadOnlySet<ScalarType> Dtypes => dtypes;

    /// <summary>The groups' row ends (int32 running sums), as _grouped_mm's offs.</summary>
    public Tensor Groups(Tensor counts) => counts.cumsum(0, ScalarType.Int32);

    public Tensor Forward(Tensor a, Tensor w, Tensor groups) => PrecisionScripts.GroupedMm(a, w.transpose(-2, -1), groups);

    public Tensor Dgrad(Tensor dy, Tensor w, Tensor groups) => PrecisionScripts.GroupedMm(dy, w, groups);

    public Tensor Wgrad(Tensor dy, Tensor a, Tensor groups) => PrecisionScripts.GroupedMm(dy.t(), a, groups);
}

public static class RecomputedExperts
{
    /// <summary>False (or POSTTRAIN_RECOMPUTED_EXPERTS=0) keeps the plain composition everywhere.</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("POSTTRAIN_RECOMPUTED_EXPERTS") != "0";

    private static readonly PerDeviceChoice<IGroupedGemms> PerDevice = new("recomputed experts", Choose);

    /// <summary>The grouped GEMMs for x's device and dtype when the function may run there, else null.</summary>
    internal static IGroupedGemms? For(Tensor x) =>
        !Enabled ? null : PerDevice.For(x) is { } g && (g is not TorchGroupedGemms t || t.Dtypes.Contains(x.dtype)) ? g : null;

    /// <summary>Per device: "on (...)" or "off: why", for the status line and the tests.</summary>
    public static IReadOnlyDictionary<int, string> Status => PerDevice.Status;

    /// <summary>Makes For return <paramref name="gemms"/> for CPU tensors in this async flow (tests).</summary>
    internal static IDisposable UseOnCpu(IGroupedGemms gemms) => PerDevice.UseOnCpu(gemms);

    /// <summary>ys (R, H) = down(silu(gate(x[tokenOf])) * up(x[tokenOf])) per expert; dx through
    /// <paramref name="train"/>'s per-token gather-sum over pos (N, k).</summary>
    internal static Tensor Apply(Tensor x, Tensor tokenOf, Tensor pos, Tensor gate, Tensor up, Tensor down, Tensor counts,
        IGroupedGemms gemms, IFusedKernels swiglu, ITrainKernels train) =>
        RecomputedExpertsFunction.apply(x, tokenOf, pos, gate, up, down, counts, gemms, swiglu, train);

    // Per activation dtype: torch._grouped_mm's kernels differ by dtype, so one that fails keeps the plain composition
    // for that dtype only.
    private static (IGroupedGemms?, string) Choose(Device device, int index)
    {
        var ok = new HashSet<ScalarType>();
        var failed = new List<string>();
        foreach (var dt in new[] { ScalarType.BFloat16, ScalarType.Float32 })
        {
            string? why;
            try { why = SelfCheck(TorchGroupedGemms.Unchecked, device, dt); }
            catch (Exception e) { why = e.Message.Split('\n')[0]; }
            if (why is null) ok.Add(dt);
            else failed.Add($"{dt}: {why}");
        }
        if (ok.Count == 0) return (null, $"off: {string.Join("; ", failed)}; the experts keep the plain composition");
        return (new TorchGroupedGemms(ok), $"on for {string.Join(", ", ok)} (torch._grouped_mm forward, dgrad and wgrad match the per-expert loop)"
            + (failed.Count > 0 ? $"; off for {string.Join("; ", failed)}" : ""));
    }

    /// <summary>Null when <paramref name="candidate"/>'s three GEMMs equal the loop's on <paramref name="device"/> (fp32
    /// and bf16, uneven counts with an empty expert, the layouts the function passes), else what differed.</summary>
    internal static string? SelfCheck(IGroupedGemms candidate, Device device, params ScalarType[] dtypes)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        var counts = tensor(new long[] { 5, 0, 19, 8 }).to(device);
        long rows = 32, k = 64, n = 48;
        foreach (var dt in dtypes.Length > 0 ? dtypes : [ScalarType.Float32, ScalarType.BFloat16])
        {
            var a = randn(rows, k, generator: gen).to(device).to(dt);
            var w = randn(4, n, k, generator: gen).to(device).to(dt);
            var dy = randn(rows, n, generator: gen).to(device).to(dt);                    // (rows, n) contiguous, as backward passes it
            var tol = dt == ScalarType.BFloat16 ? 2e-2 : 1e-4;
            var (mine, loop) = (candidate.Groups(counts), LoopGroupedGemms.Instance.Groups(counts));
            if (FusedKernels.Differs(candidate.Forward(a, w, mine), LoopGroupedGemms.Instance.Forward(a, w, loop), tol) is { } e1)
                return $"forward ({dt}): {e1}";
            if (FusedKernels.Differs(candidate.Dgrad(dy, w, mine), LoopGroupedGemms.Instance.Dgrad(dy, w, loop), tol) is { } e2)
                return $"dgrad ({dt}): {e2}";
            if (FusedKernels.Differs(candidate.Wgrad(dy, a, mine), LoopGroupedGemms.Instance.Wgrad(dy, a, loop), tol) is { } e3)
                return $"wgrad ({dt}): {e3}";
        }
        return null;
    }
}

internal sealed class RecomputedExpertsFunction : SingleTensorFunction<RecomputedExpertsFunction>
{
    public override string Name => "RecomputedExperts";

    private sealed record Kit(IGroupedGemms Gemms, IFusedKernels Swiglu, ITrainKernels Train, ScalarType GateType, ScalarType UpType, ScalarType DownType);

    // vars: x (N, H), tokenOf (R) int64, pos (N, k) int64, gate (E, I, H), up (E, I, H), down (E, H, I), counts (E) on
    // x's device, IGroupedGemms, IFusedKernels, ITrainKernels
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var x = ((Tensor)vars[0]).detach();
        Tensor tokenOf = (Tensor)vars[1], pos = (Tensor)vars[2], counts = (Tensor)vars[6];
        Tensor gate = (Tensor)vars[3], up = (Tensor)vars[4], down = (Tensor)vars[5];
        var kit = new Kit((IGroupedGemms)vars[7], (IFusedKernels)vars[8], (ITrainKernels)vars[9], gate.dtype, up.dtype, down.dtype);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (wg, wu, wd) = (Cast(gate, x), Cast(up, x), Cast(down, x));
        var groups = kit.Gemms.Groups(counts);                                                 // once for all nine GEMMs
        var xs = x.index_select(0, tokenOf);                                                   // (R, H)
        var g = kit.Gemms.Forward(xs, wg, groups);                                             // (R, I)
        var u = kit.Gemms.Forward(xs, wu, groups);
        var ys = kit.Gemms.Forward(kit.Swiglu.SwiGluForward(g, u), wd, groups);                // (R, H)
        // The weights as given (no copy) or, for fp32 masters under bf16 activations, their bf16 casts, which the
        // plain grouped linears keep for their dgrad too: casting again in backward would cost a pass over every
        // expert weight per layer.
        var same = (gate.dtype == x.dtype, up.dtype == x.dtype, down.dtype == x.dtype);
        ctx.save_for_backward([x, tokenOf, pos, g, u, same.Item1 ? gate : wg, same.Item2 ? up : wu, same.Item3 ? down : wd, groups]);
        ctx.save_data("kit", kit);
        scope.MoveToOuter(g, u, groups);
        foreach (var (cast, keep) in new[] { (wg, !same.Item1), (wu, !same.Item2), (wd, !same.Item3) })
            if (keep) cast.MoveToOuterDisposeScope();
        return ys.MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        var kit = (Kit)ctx.get_data("kit");
        Tensor dx, dGate, dUp, dDown;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var s = ctx.get_saved_variables();
            Tensor x = s[0], tokenOf = s[1], pos = s[2], g = s[3], u = s[4], groups = s[8];
            var (wg, wu, wd) = (Cast(s[5], x), Cast(s[6], x), Cast(s[7], x));
            var dys = grad_output.to(x.dtype).contiguous();                                     // (R, H)
            var xs = x.index_select(0, tokenOf);                                               // recomputed, not saved
            var h = kit.Swiglu.SwiGluForward(g, u);                                            // recomputed, not saved
            dDown = kit.Gemms.Wgrad(dys, h, groups).to(kit.DownType);                          // (E, H, I)
            var dh = kit.Gemms.Dgrad(dys, wd, groups);                                          // (R, I)
            var (dg, du) = kit.Swiglu.SwiGluBackward(dh, g, u);
            dGate = kit.Gemms.Wgrad(dg, xs, groups).to(kit.GateType);                          // (E, I, H)
            dUp = kit.Gemms.Wgrad(du, xs, groups).to(kit.UpType);
            var dxs = kit.Gemms.Dgrad(dg, wg, groups).add_(kit.Gemms.Dgrad(du, wu, groups));  // (R, H)
            dx = kit.Train.MoeGatherSum(dxs, pos);                                             // (N, H)
            scope.Detach(dx, dGate, dUp, dDown);
        }
        return AutogradReturns.Return([grad_output], [dx, null, null, dGate, dUp, dDown, null, null, null, null]);
    }

    private static Tensor Cast(Tensor w, Tensor x) => w.dtype == x.dtype ? w.detach() : w.detach().to(x.dtype);
}
