// The training kernels' contract on the CPU: the explicit backward formulas the CUDA kernels implement (the transpose of
// MLA's operand assembly, the MoE combine's and dispatch's per-token gathers) equal autograd of the plain ops; the
// autograd functions wire them so that forward and every gradient equal the plain path's; a whole model's loss and
// gradients are the same with the kernels' reference formulas in place of the plain ops, and every kernel is used; and
// the GPU self-check passes the reference against itself and names each kernel a bug is put into.
using PostTrain.Core.Kernels;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Kernels;

public sealed class TrainKernelsTests
{
    private static Tensor Angles(Generator gen, long b, long t, int rope, bool cosBatch, bool cos)
    {
        var pos = randint(0, 3000, [cosBatch ? b : 1, t], generator: gen).to(ScalarType.Float32);
        var freqs = pos.unsqueeze(-1) * pow(10000.0, -arange(0, rope, 2, dtype: ScalarType.Float32) / rope);
        return ((cos ? freqs.cos() : freqs.sin()) * 1.1).unsqueeze(1).contiguous();
    }

    private static void Close(Tensor got, Tensor want, double tol, string what) => TensorAssert.Close(got, want, tol, what);

    [Theory]
    [InlineData(false, 1.0, true, true)]
    [InlineData(true, 1.0, false, true)]
    [InlineData(true, 1.3, true, false)]
    [InlineData(false, 0.7, false, false)]
    public void Mla_qkv_function_equals_the_plain_ops_forward_and_backward(bool interleave, double prescale, bool pad, bool cosBatch)
    {
        var gen = new Generator(5);
        const long B = 2, T = 5, Latent = 12;
        var d = new MlaHeads(3, 8, 6, 10, pad ? 14 : 10);
        var q = randn([B, T, d.Heads * d.QkDim], generator: gen, dtype: ScalarType.Float64).requires_grad_();
        var kv = randn([B, T, d.Heads * (d.Nope + d.VDim)], generator: gen, dtype: ScalarType.Float64).requires_grad_();
        var ckv = randn([B, T, Latent + d.Rope], generator: gen, dtype: ScalarType.Float64).requires_grad_();
        var cos = Angles(gen, B, T, d.Rope, cosBatch, cos: true);
        var sin = Angles(gen, B, T, d.Rope, cosBatch, cos: false);
        var gQ = randn([B, d.Heads, T, d.QkDim], generator: gen, dtype: ScalarType.Float64);
        var gK = randn([B, d.Heads, T, d.QkDim], generator: gen, dtype: ScalarType.Float64);
        var gV = randn([B, d.Heads, T, d.VOut], generator: gen, dtype: ScalarType.Float64);

        (Tensor Q, Tensor K, Tensor V, Tensor Dq, Tensor Dkv, Tensor Dckv) Run(bool function)
        {
            foreach (var t in new[] { q, kv, ckv }) t.grad?.zero_();
            var kRope = ckv.narrow(-1, Latent, d.Rope);
            var (Q, K, V) = function
                ? TrainOps.MlaQkv(q, kv, kRope, cos, sin, d, prescale, interleave, ReferenceTrainKernels.Instance)
                : ReferenceTrainKernels.PlainQkv(q, kv, kRope, cos, sin, d, prescale, x => Rotary.ApplyPlain(x, cos, sin, interleave));
            ((Q * gQ).sum() + (K * gK).sum() + (V * gV).sum()).backward();
            return (Q.detach(), K.detach(), V.detach(), q.grad!.clone(), kv.grad!.clone(), ckv.grad!.clone());
        }

        var plain = Run(function: false);
        var fused = Run(function: true);
        var ckv32 = ckv.detach().to(ScalarType.Float32);
        Assert.True(TrainKernels.MlaFits(q.detach().to(ScalarType.Float32), kv.detach().to(ScalarType.Float32), ckv32.narrow(-1, Latent, d.Rope), cos, sin, d));
        Assert.True(fused.Q.equal(plain.Q).all().item<bool>(), "Q");
        Assert.True(fused.K.equal(plain.K).all().item<bool>(), "K");
        Assert.True(fused.V.equal(plain.V).all().item<bool>(), "V");
        if (pad) Assert.Equal(0.0, fused.V.narrow(-1, d.VDim, d.VOut - d.VDim).abs().max().item<double>());
        Close(fused.Dq, plain.Dq, 1e-12, "dq");
        Close(fused.Dkv, plain.Dkv, 1e-12, "dkv");
        Close(fused.Dckv, plain.Dckv, 1e-12, "dckv (k_rope part; the latent part gets nothing here)");
        Assert.Equal(0.0, fused.Dckv.narrow(-1, 0, Latent).abs().max().item<double>());
        // The rotation's transpose is not the identity: the gradient of k_rope differs from the summed dK it came from.
        Assert.True(plain.Dckv.narrow(-1, Latent, d.Rope).sub(gK.narrow(-1, d.Nope, d.Rope).sum(1)).abs().max().item<double>() > 1e-3);
    }

    [Fact]
    public void Mla_qkv_backward_formulas_in_bfloat16_stay_within_rounding_of_autograd()
    {
        var gen = new Generator(6);
        const long B = 2, T = 7;
        var d = new MlaHeads(4, 16, 8, 16, 24);
        var q = (randn([B, T, d.Heads * d.QkDim], generator: gen) * 2).to(ScalarType.BFloat16).requires_grad_();
        var kv = (randn([B, T, d.Heads * (d.Nope + d.VDim)], generator: gen) * 2).to(ScalarType.BFloat16).requires_grad_();
        var kRope = (randn([B, T, d.Rope], generator: gen) * 2).to(ScalarType.BFloat16).requires_grad_();
        var cos = Angles(gen, B, T, d.Rope, true, cos: true);
        var sin = Angles(gen, B, T, d.Rope, true, cos: false);
        var gQ = randn([B, d.Heads, T, d.QkDim], generator: gen).to(ScalarType.BFloat16);
        var gK = randn([B, d.Heads, T, d.QkDim], generator: gen).to(ScalarType.BFloat16);
        var gV = randn([B, d.Heads, T, d.VOut], generator: gen).to(ScalarType.BFloat16);
        var (Q, K, V) = ReferenceTrainKernels.PlainQkv(q, kv, kRope, cos, sin, d, 1.25, x => Rotary.ApplyPlain(x, cos, sin, true));
        autograd.backward([Q, K, V], [gQ, gK, gV]);
        var (dq, dkv, dkr) = ReferenceTrainKernels.Instance.MlaQkvBackward(gQ, gK, gV, cos, sin, d, 1.25, true);
        Assert.Equal(ScalarType.BFloat16, dq.dtype);
        Close(dq.to(ScalarType.Float32), q.grad!.to(ScalarType.Float32), 1e-2, "dq");
        Assert.True(dkv.equal(kv.grad!).all().item<bool>(), "dkv is a copy of dK's and dV's parts");
        Close(dkr.to(ScalarType.Float32), kRope.grad!.to(ScalarType.Float32), 2e-2, "dk_rope");
    }

    [Theory]
    [InlineData(ScalarType.Float64, 1e-12)]
    [InlineData(ScalarType.BFloat16, 1e-2)]
    public void Moe_dispatch_and_combine_equal_the_index_add_path(ScalarType dtype, double tol)
    {
        var gen = new Generator(7);
        const long N = 11, H = 6, E = 5;
        const int K = 3;
        var x = randn([N, H], generator: gen).to(dtype).requires_grad_();
        var wRaw = rand([N, K], generator: gen).requires_grad_();
        var idx = rand([N, E], generator: gen).topk(K, dim: -1).indexes;                     // (N, k) distinct experts
        var flatIdx = idx.reshape(-1);
        var order = flatIdx.sort(stable: true).Indices;
        var tokenOf = order.div(K, rounding_mode: RoundingMode.floor);
        var gy = randn([N, H], generator: gen).to(dtype);

        (Tensor Y, Tensor Dx, Tensor Dw) Run(bool fused)
        {
            x.grad?.zero_();
            wRaw.grad?.zero_();
            var w = wRaw * 2.5;                                                                 // fp32 gate weights with a history
            Tensor y;
            if (fused)
            {
                var pos = TrainOps.InverseOrder(order, N, K);
                var xs = TrainOps.Dispatch(x, tokenOf, pos, ReferenceTrainKernels.Instance);
                var ys = (xs * 1.5).tanh();                                                     // an expert-like function of xs
                y = TrainOps.Combine(ys, w, pos, ReferenceTrainKernels.Instance);
            }
            else
            {
                var xs = x.index_select(0, tokenOf);
                var ys = (xs * 1.5).tanh();
                var wSorted = w.reshape(-1).index_select(0, order).unsqueeze(-1);
                var weighted = ys * wSorted;                                                    // promotes as in MoE.forward
                y = zeros(N, H, dtype: weighted.dtype).index_add(0, tokenOf, weighted, 1).to(dtype);
            }
            (y.to(ScalarType.Float64) * gy.to(ScalarType.Float64)).sum().backward();
            return (y.detach(), x.grad!.clone(), wRaw.grad!.clone());
        }

        var plain = Run(fused: false);
        var fusedRun = Run(fused: true);
        Assert.Equal(dtype, fusedRun.Y.dtype);
        Close(fusedRun.Y, plain.Y, tol, "y");
        Close(fusedRun.Dx, plain.Dx, tol, "dx");
        Close(fusedRun.Dw, plain.Dw, dtype == ScalarType.BFloat16 ? 1e-2 : 1e-6, "dw");
        // pos inverts the sort: row pos[n, j] of the expert order holds token n.
        var posCheck = TrainOps.InverseOrder(order, N, K);
        Assert.True(tokenOf.index_select(0, posCheck.reshape(-1)).equal(arange(N).repeat_interleave(K)).all().item<bool>());
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void A_model_step_on_the_kernels_reference_formulas_equals_the_plain_ops_and_uses_every_kernel(bool interleave, bool pad)
    {
        var config = BuiltinModels.Micro() with { RopeInterleave = interleave, UseCorrectionBias = true, ScoringFunc = "sigmoid" };
        using var model = new DeepSeekForCausalLM(config);
        model.InitWeights(seed: 3);
        model.SetAttentionValuePadding(pad);
        var gen = new Generator(8);
        var ids = randint(0, config.VocabSize, [2, 9], generator: gen);
        var labels = randint(0, config.VocabSize, [2, 9], generator: gen);
        var parameters = model.parameters().ToArray();

        (double Loss, Tensor[] Grads) Step()
        {
            foreach (var p in parameters) p.grad?.zero_();
            var logits = model.Forward(ids).Logits;
            var loss = nn.functional.cross_entropy(logits.reshape(-1, config.VocabSize), labels.reshape(-1));
            loss.backward();
            return (loss.item<float>(), parameters.Select(p => p.grad is null ? zeros(1) : p.grad.clone()).ToArray());
        }

        var plain = Step();
        var train = new CountingTrainKernels();
        var decode = new CountingRouter();
        (double Loss, Tensor[] Grads) fused;
        using (TrainKernels.UseOnCpu(train))
        using (DecodeKernels.UseOnCpu(decode))
            fused = Step();
        Assert.Equal(plain.Loss, fused.Loss, 5);
        for (int i = 0; i < parameters.Length; i++) Close(fused.Grads[i], plain.Grads[i], 1e-5, $"gradient {i}");
        // MLA in every layer (2) forward and backward; MoE in the one MoE layer; the router's choice there.
        Assert.Equal(2, train.Calls["mla"]);
        Assert.Equal(2, train.Calls["mla backward"]);
        Assert.Equal(1, train.Calls["combine"]);
        Assert.Equal(1, train.Calls["combine backward"]);
        Assert.Equal(1, train.Calls["gather"]);
        Assert.Equal(1, decode.RouterCalls);
        // Outside the scope the plain ops run again.
        var again = Step();
        Assert.Equal(2, train.Calls["mla"]);
        Assert.Equal(plain.Loss, again.Loss, 6);
    }

    [Fact]
    public void Self_check_passes_the_reference_and_names_each_broken_kernel()
    {
        string? Check(ITrainKernels k) => TrainKernels.SelfCheckEach(k, ReferenceTrainKernels.Instance, CPU).Values.FirstOrDefault();
        Assert.Empty(TrainKernels.SelfCheckEach(ReferenceTrainKernels.Instance, ReferenceTrainKernels.Instance, CPU));
        Assert.StartsWith("mla qkv (Float32, 12 heads 64+32, v 64->96, 2x5, interleave False, prescale 1, cos per row) Q",
            Check(new Broken(qSign: true)));
        Assert.StartsWith("mla qkv (Float32, 12 heads 64+32, v 64->64, 2x5, interleave True, prescale 1.3, cos broadcast) dq",
            Check(new Broken(dqIgnoresPrescale: true)));
        Assert.StartsWith("mla qkv (Float32, 12 heads 64+32, v 64->96, 2x5, interleave False, prescale 1, cos per row) dk_rope",
            Check(new Broken(dkRopeFirstHead: true)));
        Assert.StartsWith("moe combine (Float32, 37 tokens top-4, hidden 768) dw",
            Check(new Broken(dwZero: true)));
        Assert.StartsWith("moe gather (Float32, 37 tokens top-4, hidden 768)",
            Check(new Broken(gatherFirstOnly: true)));
        var each = TrainKernels.SelfCheckEach(new Broken(qSign: true, gatherFirstOnly: true), ReferenceTrainKernels.Instance, CPU);
        Assert.Equal(["mla qkv", "moe gather"], each.Keys.OrderBy(k => k, StringComparer.Ordinal));
    }

    private sealed class CountingTrainKernels : ITrainKernels
    {
        private readonly ReferenceTrainKernels r = ReferenceTrainKernels.Instance;
        public readonly Dictionary<string, int> Calls = new() { ["mla"] = 0, ["mla backward"] = 0, ["combine"] = 0, ["combine backward"] = 0, ["gather"] = 0 };

        public (Tensor Q, Tensor K, Tensor V) MlaQkv(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave)
        {
            Calls["mla"]++;
            return r.MlaQkv(q, kv, kRope, cos, sin, d, prescale, interleave);
        }

        public (Tensor Dq, Tensor Dkv, Tensor DkRope) MlaQkvBackward(Tensor dQ, Tensor dK, Tensor dV, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave)
        {
            Calls["mla backward"]++;
            return r.MlaQkvBackward(dQ, dK, dV, cos, sin, d, prescale, interleave);
        }

        public Tensor MoeCombine(Tensor ys, Tensor w, Tensor pos) { Calls["combine"]++; return r.MoeCombine(ys, w, pos); }

        public (Tensor Dys, Tensor Dw) MoeCombineBackward(Tensor dy, Tensor ys, Tensor w, Tensor pos) { Calls["combine backward"]++; return r.MoeCombineBackward(dy, ys, w, pos); }

        public Tensor MoeGatherSum(Tensor dxs, Tensor pos) { Calls["gather"]++; return r.MoeGatherSum(dxs, pos); }
    }

    // The decode kernels' reference with the router's selection counted (the only decode kernel a training step uses).
    private sealed class CountingRouter : IDecodeKernels
    {
        private readonly ReferenceDecodeKernels r = ReferenceDecodeKernels.Instance;
        public int RouterCalls;

        public Tensor Rope(Tensor x, Tensor cos, Tensor sin, bool interleave) => r.Rope(x, cos, sin, interleave);
        public Tensor MaskedSoftmax(Tensor scores, Tensor bias, double scale) => r.MaskedSoftmax(scores, bias, scale);

        public (Tensor Indices, Tensor Weights, Tensor Scores) RouterSelect(Tensor logits, Tensor? bias, int groups, int topkGroup, int k, bool normalize, double scaling)
        {
            RouterCalls++;
            Assert.False(logits.requires_grad);
            return r.RouterSelect(logits, bias, groups, topkGroup, k, normalize, scaling);
        }

        public Tensor CombineSilu(Tensor gu, Tensor indices, Tensor weights) => r.CombineSilu(gu, indices, weights);
        public void LatentAppend(Tensor ckv, Tensor w, double eps, Tensor cos, Tensor sin, bool interleave, Tensor cache, Tensor? columns, long cursor) =>
            r.LatentAppend(ckv, w, eps, cos, sin, interleave, cache, columns, cursor);
        public (Tensor Tokens, Tensor LogProbs) SampleRace(Tensor logits, double temperature, long seed, Tensor rowKeys, Tensor? deviceStep, long step) =>
            r.SampleRace(logits, temperature, seed, rowKeys, deviceStep, step);
    }

    private sealed class Broken(bool qSign = false, bool dqIgnoresPrescale = false, bool dkRopeFirstHead = false, bool dwZero = false,
        bool gatherFirstOnly = false) : ITrainKernels
    {
        private readonly ReferenceTrainKernels r = ReferenceTrainKernels.Instance;

        public (Tensor Q, Tensor K, Tensor V) MlaQkv(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave)
        {
            var (Q, K, V) = r.MlaQkv(q, kv, kRope, cos, sin, d, prescale, interleave);
            return (qSign ? -Q : Q, K, V);
        }

        public (Tensor Dq, Tensor Dkv, Tensor DkRope) MlaQkvBackward(Tensor dQ, Tensor dK, Tensor dV, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave)
        {
            var (dq, dkv, dkr) = r.MlaQkvBackward(dQ, dK, dV, cos, sin, d, dqIgnoresPrescale ? 1.0 : prescale, interleave);
            if (dqIgnoresPrescale) (_, dkv, dkr) = r.MlaQkvBackward(dQ, dK, dV, cos, sin, d, prescale, interleave);
            if (dkRopeFirstHead)
                dkr = r.MlaQkvBackward(dQ.narrow(1, 0, 1), dK.narrow(1, 0, 1), dV.narrow(1, 0, 1), cos, sin, d with { Heads = 1 }, prescale, interleave).DkRope;
            return (dq, dkv, dkr);
        }

        public Tensor MoeCombine(Tensor ys, Tensor w, Tensor pos) => r.MoeCombine(ys, w, pos);

        public (Tensor Dys, Tensor Dw) MoeCombineBackward(Tensor dy, Tensor ys, Tensor w, Tensor pos)
        {
            var (dys, dw) = r.MoeCombineBackward(dy, ys, w, pos);
            return (dys, dwZero ? zeros_like(dw) : dw);
        }

        public Tensor MoeGatherSum(Tensor dxs, Tensor pos) =>
            gatherFirstOnly ? r.MoeGatherSum(dxs, pos.narrow(1, 0, 1).contiguous()) : r.MoeGatherSum(dxs, pos);
    }
}
