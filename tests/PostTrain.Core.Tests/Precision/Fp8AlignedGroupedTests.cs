// The sync-free grouped FP8 expert path (Fp8ExpertLayout + Fp8AlignedGroupedFunction over IFp8Kernels) on the CPU
// with ReferenceFp8Kernels: the layout against a hand-worked example; the reference grouped GEMMs against
// Fp8Gemm.Emulate per block / per segment; the whole function (forward, dX, dW) against the per-expert loop it replaces
// on the GPU (Fp8GroupedFunction, through Fp8.GroupedLinear on the CPU); and the kernels' self-check, which must pass
// the reference against itself and name each of several broken backends.
using PostTrain.Core.Kernels;
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using P = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Tests.Precision;

public sealed class Fp8AlignedGroupedTests
{
    [Fact]
    public void LayoutPadsEveryExpertToA128RowBoundary()
    {
        // counts [3, 0, 130, 1]: padded [128, 0, 256, 128], segment starts [0, 128, 128, 384], ends [128, 128, 384, 512].
        using var layout = Fp8ExpertLayout.Build(tensor(new long[] { 3, 0, 130, 1 }), 134);
        Assert.Equal(640, layout.Rows);                                          // 128 (ceil(134 / 128) + 4 - 1)
        Assert.False(layout.Identity);
        var destination = layout.Destination.data<long>().ToArray();
        var expected = new List<long> { 0, 1, 2 };
        expected.AddRange(Enumerable.Range(128, 130).Select(i => (long)i));      // expert 2's rows 3..132
        expected.Add(384);                                                       // expert 3's row 133
        Assert.Equal(expected, destination);
        Assert.Equal(new[] { 0, 2, 2, 3, -1 }, layout.BlockExpert.data<int>().ToArray());
        Assert.Equal(new[] { 0, 128, 128, 384, 512 }, layout.Segments.data<int>().ToArray());
        Assert.Equal(ScalarType.Int32, layout.BlockExpert.dtype);

        var x = arange(134 * 2, dtype: ScalarType.Float32).view(134, 2) + 1;
        var scattered = layout.Scatter(x);
        Assert.Equal(new long[] { 640, 2 }, scattered.shape);
        Assert.Equal(x.abs().sum().item<float>(), scattered.abs().sum().item<float>());   // padding rows are zeros
        Assert.True(layout.Gather(scattered, 2).eq(x).all().item<bool>());
    }

    [Fact]
    public void LayoutOfNoRowsIsAllPadding()
    {
        using var layout = Fp8ExpertLayout.Build(tensor(new long[] { 0, 0 }), 0);
        Assert.Equal(128, layout.Rows);
        Assert.Equal(new[] { -1 }, layout.BlockExpert.data<int>().ToArray());
        Assert.Equal(new[] { 0, 0, 0 }, layout.Segments.data<int>().ToArray());
    }

    [Fact]
    public void OneExpertWithWholeBlocksIsTheIdentityLayout()
    {
        using var dense = Fp8ExpertLayout.Build(tensor(new long[] { 256 }), 256);
        Assert.True(dense.Identity);
        Assert.Equal(256, dense.Rows);
        Assert.Equal(new[] { 0, 0 }, dense.BlockExpert.data<int>().ToArray());
        var x = arange(512, dtype: ScalarType.Float32).view(256, 2);
        Assert.True(dense.Scatter(x).eq(x).all().item<bool>());
        foreach (var tokens in new long[] { 256, 200 })
        {
            using var built = Fp8ExpertLayout.Build(tensor(new long[] { tokens }), tokens);
            using var single = Fp8ExpertLayout.Single(tokens, CPU);
            Assert.Equal((built.Rows, built.Identity), (single.Rows, single.Identity));
            Assert.Equal(built.Destination.data<long>().ToArray(), single.Destination.data<long>().ToArray());
            Assert.Equal(built.BlockExpert.data<int>().ToArray(), single.BlockExpert.data<int>().ToArray());
            Assert.Equal(built.Segments.data<int>().ToArray(), single.Segments.data<int>().ToArray());
        }
        using var ragged = Fp8ExpertLayout.Build(tensor(new long[] { 200 }), 200);
        Assert.False(ragged.Identity);
        Assert.Equal(256, ragged.Rows);
        Assert.Equal(new[] { 0, 0 }, ragged.BlockExpert.data<int>().ToArray());
    }

    [Fact]
    public void TransposedBlockQuantisationEqualsQuantisingTheTransposedWeights()
    {
        // What the native quant_blocks2 relies on: a 128x128 block's amax is its transpose's, so quantising W^T gives
        // exactly the transposed q and scales (ragged N and K: padding blocks included). Checked against Fp8's own
        // quantiser run on the transposed copy, not against QuantBlocksBoth's own transpose.
        var w = randn(2, 200, 300, generator: new Generator(7)) * 0.05;
        w[1, 150, 290] = tensor(3.5f);                                                        // one block with a large amax
        var (q, s, qt, st) = ReferenceFp8Kernels.Instance.QuantBlocksBoth(w);
        var (wantQ, wantS) = Fp8.QuantizeBlocks(w.transpose(1, 2).contiguous(), Fp8.Block, Fp8.Block);
        Assert.Equal(new long[] { 2, 256, 384 }, q.shape);
        Assert.Equal(new long[] { 2, 384, 256 }, qt.shape);
        Assert.Equal(new long[] { 2, 3, 2 }, st.shape);
        Assert.True(qt.to(ScalarType.Float32).eq(wantQ.to(ScalarType.Float32)).all().item<bool>());   // no NaN here: exact
        Assert.True(st.eq(wantS).all().item<bool>());
        Assert.Equal(3.5f / 448f, st[1, 2, 1].item<float>(), 6);
    }

    [Fact]
    public void DenseLayerAsOneExpertEqualsTheFp8LinearFunction()
    {
        // What LinearOps.Linear(Fp8) runs on CUDA with the native kernels, here on the reference kernels, against
        // Fp8LinearFunction (the CPU / _scaled_mm path): M = 200 rows (not whole blocks), K = 136, N = 72.
        var rng = new Rng(34);
        var x = rng.Randn(200, 136);
        var w = rng.Randn(72, 136) * 0.1;
        var dy = rng.Randn(200, 72);
        var one = Run(x, w, dy, (xi, wi) => Fp8AlignedGroupedFunction.apply(xi, wi, Fp8AlignedGroupedFunction.DenseRows, ReferenceFp8Kernels.Instance)[0]);
        var linear = Run(x, w, dy, (xi, wi) => LinearOps.Linear(xi, wi, null, P.Fp8));
        foreach (var (a, b, what) in new[] { (one.y, linear.y, "y"), (one.dx, linear.dx, "dx"), (one.dw, linear.dw, "dw") })
        {
            Assert.Equal(b.shape, a.shape);
            double err = (a - b).abs().max().item<float>() / b.abs().max().item<float>();
            Assert.True(err <= 1e-5, $"{what}: relative error {err}");
        }
    }

    [Fact]
    public void ReferenceMGroupedGemmIsOneBlockwiseGemmPerRowBlock()
    {
        var rng = new Rng(31);
        var k = ReferenceFp8Kernels.Instance;
        var (qa, sa) = k.QuantRows(rng.Randn(512, 256));
        var (qb, sb) = k.QuantBlocks(rng.Randn(3, 384, 256) * 0.05);
        var blockExpert = tensor(new[] { 2, -1, 0, 2 });
        var c = k.GemmMGrouped(qa, sa, qb, sb, blockExpert);
        Assert.Equal(new long[] { 512, 384 }, c.shape);
        foreach (var (block, e) in new[] { (0, 2), (2, 0), (3, 2) })
        {
            var rows = qa.narrow(0, block * 128, 128);
            var want = Fp8Gemm.Emulate(rows, sa.narrow(0, block * 128, 128), qb[e], sb[e], Fp8Layout.Blocks128x128, 128, 384);
            Assert.True(c.narrow(0, block * 128, 128).allclose(want, rtol: 1e-6, atol: 1e-6), $"block {block}");
        }
        Assert.Equal(0f, c.narrow(0, 128, 128).abs().sum().item<float>());        // the padding block
    }

    [Fact]
    public void ReferenceKGroupedGemmContractsEachExpertsTokenSegment()
    {
        var rng = new Rng(32);
        var k = ReferenceFp8Kernels.Instance;
        var (qa, sa) = k.QuantRows(rng.Randn(256, 640));
        var (qb, sb) = k.QuantRows(rng.Randn(128, 640));
        var c = k.GemmKGrouped(qa, sa, qb, sb, tensor(new[] { 0, 384, 384, 640 }));
        Assert.Equal(new long[] { 3, 256, 128 }, c.shape);
        var first = Fp8Gemm.Emulate(qa.narrow(1, 0, 384).contiguous(), sa.narrow(1, 0, 3).contiguous(),
            qb.narrow(1, 0, 384).contiguous(), sb.narrow(1, 0, 3).contiguous(), Fp8Layout.Tiles1x128, 256, 128);
        var last = Fp8Gemm.Emulate(qa.narrow(1, 384, 256).contiguous(), sa.narrow(1, 3, 2).contiguous(),
            qb.narrow(1, 384, 256).contiguous(), sb.narrow(1, 3, 2).contiguous(), Fp8Layout.Tiles1x128, 256, 128);
        Assert.True(c[0].allclose(first, rtol: 1e-5, atol: 1e-5));
        Assert.Equal(0f, c[1].abs().sum().item<float>());                         // an expert with no tokens
        Assert.True(c[2].allclose(last, rtol: 1e-5, atol: 1e-5));
        // into bfloat16: the float32 result rounded once
        var c16 = k.GemmKGrouped(qa, sa, qb, sb, tensor(new[] { 0, 384, 384, 640 }), ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, c16.dtype);
        Assert.True(c16.eq(c.to(ScalarType.BFloat16)).all().item<bool>());
    }

    private static readonly long[] Counts = [70, 0, 130, 3, 200];   // an empty expert, slices not multiples of 128
    private const long K = 136, N = 200;

    private static (Tensor y, Tensor dx, Tensor dw) Run(Tensor x0, Tensor w0, Tensor dy, Func<Tensor, Tensor, Tensor> layer)
    {
        var x = x0.clone().requires_grad_(true);
        var w = nn.Parameter(w0.clone());
        var y = layer(x, w);
        y.backward([dy]);
        return (y.detach(), x.grad!, w.grad!);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void AlignedFunctionEqualsThePerExpertLoop(ScalarType dtype)
    {
        var rng = new Rng(33);
        long t = Counts.Sum();
        var x = rng.Randn(t, K).to(dtype);
        var w = (rng.Randn(Counts.Length, N, K) * 0.1).to(dtype);
        var dy = rng.Randn(t, N).to(dtype);
        var counts = tensor(Counts);

        var aligned = Run(x, w, dy, (xi, wi) => Fp8AlignedGroupedFunction.apply(xi, wi, counts, ReferenceFp8Kernels.Instance)[0]);
        var loop = Run(x, w, dy, (xi, wi) => Fp8.GroupedLinear(xi, wi, counts, P.Fp8));   // the CPU takes the loop

        // Same tiles, same FP8 values: only FP32 summation order and the final rounding to dtype may differ.
        double tol = dtype == ScalarType.Float32 ? 1e-5 : 1e-2;
        foreach (var (a, b, what) in new[] { (aligned.y, loop.y, "y"), (aligned.dx, loop.dx, "dx"), (aligned.dw, loop.dw, "dw") })
        {
            Assert.Equal(b.shape, a.shape);
            Assert.Equal(dtype, a.dtype);
            double err = (a.to(ScalarType.Float32) - b.to(ScalarType.Float32)).abs().max().item<float>() / b.to(ScalarType.Float32).abs().max().item<float>();
            Assert.True(err <= tol, $"{what}: relative error {err}");
        }
        Assert.Equal(0f, aligned.dw[1].to(ScalarType.Float32).abs().sum().item<float>());   // the empty expert

        // And it is the expert GEMM (within FP8 error of FP32 per-expert matmuls), not merely equal to the loop.
        var exact = Run(x.to(ScalarType.Float32), w.to(ScalarType.Float32), dy.to(ScalarType.Float32), (xi, wi) => Fp8.GroupedLinear(xi, wi, counts, P.Fp32));
        double yErr = (aligned.y.to(ScalarType.Float32) - exact.y).abs().max().item<float>() / exact.y.abs().max().item<float>();
        Assert.InRange(yErr, 1e-5, 0.1);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void ExpertsFunctionEqualsThreeGroupedLinearsWithTheSwiGluBetween(ScalarType dtype)
    {
        // The fused FFN (one padded layout from entry to exit) against the composition it replaces: gate and up through
        // Fp8AlignedGroupedFunction, the SwiGLU on the sorted rows, down through Fp8AlignedGroupedFunction. Same tiles,
        // same FP8 values, same SwiGLU formulas: forward and all four gradients agree to rounding. Ragged sizes
        // (H = 200, I = 130: padded columns and rows) and an empty expert.
        var rng = new Rng(41);
        long[] counts = [70, 0, 200, 33];
        long t = counts.Sum(), h = 200, inter = 130;
        var x0 = rng.Randn(t, h).to(dtype);
        var g0 = (rng.Randn(counts.Length, inter, h) * 0.1).to(dtype);
        var u0 = (rng.Randn(counts.Length, inter, h) * 0.1).to(dtype);
        var d0 = (rng.Randn(counts.Length, h, inter) * 0.1).to(dtype);
        var dy = rng.Randn(t, h).to(dtype);
        var c = tensor(counts);
        var k = ReferenceFp8Kernels.Instance;
        var swiglu = ReferenceFusedKernels.Instance;

        Tensor[] Grads(Func<Tensor, Tensor, Tensor, Tensor, Tensor> ffn)
        {
            var x = x0.clone().requires_grad_(true);
            var ws = new[] { nn.Parameter(g0.clone()), nn.Parameter(u0.clone()), nn.Parameter(d0.clone()) };
            var y = ffn(x, ws[0], ws[1], ws[2]);
            y.backward([dy]);
            return [y.detach(), x.grad!, ws[0].grad!, ws[1].grad!, ws[2].grad!];
        }
        var fusedRun = Grads((x, g, u, d) => Fp8.ExpertsFp8(x, g, u, d, c, k, swiglu));
        var composed = Grads((x, g, u, d) =>
        {
            var a = Fp8AlignedGroupedFunction.apply(x, g, c, k)[0];
            var b = Fp8AlignedGroupedFunction.apply(x, u, c, k)[0];
            return Fp8AlignedGroupedFunction.apply(FusedOps.SwiGlu(a, b, swiglu), d, c, k)[0];
        });
        double tol = dtype == ScalarType.Float32 ? 1e-5 : 1e-2;
        string[] names = ["y", "dx", "dGate", "dUp", "dDown"];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.Equal(composed[i].shape, fusedRun[i].shape);
            Assert.Equal(dtype, fusedRun[i].dtype);
            var want = composed[i].to(ScalarType.Float32);
            double err = (fusedRun[i].to(ScalarType.Float32) - want).abs().max().item<float>() / want.abs().max().item<float>();
            Assert.True(err <= tol, $"{names[i]}: relative error {err}");
        }
        foreach (var grad in fusedRun[2..]) Assert.Equal(0f, grad[1].to(ScalarType.Float32).abs().sum().item<float>());   // the empty expert
    }

    [Fact]
    public void WeightCacheQuantisesEachParameterOncePerWindowWithTheUncachedNumbers()
    {
        var rng = new Rng(52);
        long[] counts = [70, 0, 200, 33];
        long t = counts.Sum(), h = 200, inter = 130;
        var x0 = rng.Randn(t, h);
        var dy = rng.Randn(t, h);
        var ws = new[] { (inter, h), (inter, h), (h, inter) }
            .Select(s => nn.Parameter(rng.Randn(counts.Length, s.Item1, s.Item2) * 0.1)).ToArray();
        var c = tensor(counts);
        Tensor[] Pass()
        {
            foreach (var w in ws) w.grad?.zero_();
            var x = x0.clone().requires_grad_(true);
            var y = Fp8.ExpertsFp8(x, ws[0], ws[1], ws[2], c, ReferenceFp8Kernels.Instance, ReferenceFusedKernels.Instance);
            y.backward([dy]);
            return [y.detach(), x.grad!, .. ws.Select(w => w.grad!.clone())];
        }
        static void Same(Tensor[] a, Tensor[] b)
        {
            for (int i = 0; i < a.Length; i++) Assert.True(a[i].eq(b[i]).all().item<bool>(), $"output {i} differs");
        }

        var uncached = Pass();
        Assert.Null(Fp8WeightCache.Active);
        using (var window = Fp8WeightCache.Open())
        {
            Same(Pass(), uncached);                      // two micro-batches of one step: quantised once each
            Same(Pass(), uncached);
            Assert.Equal((3L, 3L), (window.Misses, window.Hits));
        }
        Assert.Null(Fp8WeightCache.Active);

        // The optimizer changes the weights between windows: the next window quantises them again.
        using (no_grad()) ws[0].mul_(2);
        var changed = Pass();
        Assert.False(changed[0].eq(uncached[0]).all().item<bool>());
        using (var window = Fp8WeightCache.Open())
        {
            Same(Pass(), changed);
            Assert.Equal((3L, 0L), (window.Misses, window.Hits));

            // A dense layer's 2-D parameter is cached too; a tensor computed from it (not a parameter) never is.
            var dense = nn.Parameter(rng.Randn(72, h) * 0.1);
            var xd = rng.Randn(256, h);
            var y1 = Fp8AlignedGroupedFunction.apply(xd, dense, Fp8AlignedGroupedFunction.DenseRows, ReferenceFp8Kernels.Instance)[0];
            var y2 = Fp8AlignedGroupedFunction.apply(xd, dense, Fp8AlignedGroupedFunction.DenseRows, ReferenceFp8Kernels.Instance)[0];
            Assert.True(y1.eq(y2).all().item<bool>());
            Assert.Equal((4L, 1L), (window.Misses, window.Hits));
            Fp8AlignedGroupedFunction.apply(xd, dense * 1, Fp8AlignedGroupedFunction.DenseRows, ReferenceFp8Kernels.Instance)[0].Dispose();
            Assert.Equal((4L, 1L), (window.Misses, window.Hits));
        }
    }

    [Fact]
    public void SelfCheckPassesTheReferenceAndNamesEachBrokenKernel()
    {
        var cpu = CPU;
        Assert.Null(Fp8Kernels.SelfCheck(ReferenceFp8Kernels.Instance, ReferenceFp8Kernels.Instance, cpu));
        foreach (var (broken, name) in new (Broken.Fault, string)[]
                 {
                     (Broken.Fault.RowScale, "QuantRows"),
                     (Broken.Fault.ColumnTranspose, "QuantColumns"),
                     (Broken.Fault.RequantScale, "RequantColumns"),
                     (Broken.Fault.BlockValue, "QuantBlocks"),
                     (Broken.Fault.TransposedBlockScale, "QuantBlocksBoth"),
                     (Broken.Fault.SkipsPaddingZeros, "GemmMGrouped"),
                     (Broken.Fault.EmptySegment, "GemmKGrouped"),
                     (Broken.Fault.Bf16OutputOff, "GemmKGrouped (bfloat16 output)"),
                     (Broken.Fault.DropsSlicesPastRingM, "GemmMGrouped (K = 1280)"),
                     (Broken.Fault.DropsSlicesPastRingK, "GemmKGrouped (a 1280-token segment)"),
                 })
        {
            var message = Fp8Kernels.SelfCheck(new Broken(broken), ReferenceFp8Kernels.Instance, cpu);
            Assert.NotNull(message);
            Assert.StartsWith(name, message);
        }
    }

    // The reference with one deliberate fault each.
    private sealed class Broken(Broken.Fault fault) : IFp8Kernels
    {
        // DropsSlicesPastRing*: a kernel whose 5-stage ring loses every 128-deep slice after the fifth of a contraction
        // (of a row block's K, of an expert's token segment), as a wrong barrier phase would.
        public enum Fault { RowScale, ColumnTranspose, RequantScale, BlockValue, TransposedBlockScale, SkipsPaddingZeros, EmptySegment, DropsSlicesPastRingM, DropsSlicesPastRingK, Bf16OutputOff }

        private const int RingSlices = 5;

        private static readonly ReferenceFp8Kernels R = ReferenceFp8Kernels.Instance;

        public (Tensor Q, Tensor Scale) QuantRows(Tensor x)
        {
            var (q, s) = R.QuantRows(x);
            return fault == Fault.RowScale ? (q, s * 1.0001f) : (q, s);
        }

        public (Tensor Q, Tensor Scale) QuantColumns(Tensor x) =>
            R.QuantColumns(fault == Fault.ColumnTranspose ? x.flip(0) : x);

        public (Tensor Q, Tensor Scale) RequantColumns(Tensor q, Tensor scale)
        {
            var (qt, st) = R.RequantColumns(q, scale);
            return fault == Fault.RequantScale ? (qt, st * 2) : (qt, st);
        }

        public (Tensor Q, Tensor Scale) QuantBlocks(Tensor w)
        {
            var (q, s) = R.QuantBlocks(w);
            if (fault == Fault.BlockValue) q = (q.to(ScalarType.Float32) * 0.5).to(Fp8.Float8E4M3);
            return (q, s);
        }

        public (Tensor Q, Tensor Scale, Tensor QT, Tensor ScaleT) QuantBlocksBoth(Tensor w)
        {
            var (q, s) = QuantBlocks(w);
            var (_, _, qt, st) = R.QuantBlocksBoth(w);
            return fault == Fault.TransposedBlockScale ? (q, s, qt, st.transpose(-2, -1).contiguous().view(st.shape)) : (q, s, qt, st);
        }

        public Tensor GemmMGrouped(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor blockExpert)
        {
            if (fault == Fault.DropsSlicesPastRingM && sa.shape[1] > RingSlices)
            {
                sa = sa.clone();
                sa.narrow(1, RingSlices, sa.shape[1] - RingSlices).zero_();
            }
            var c = R.GemmMGrouped(qa, sa, qb, sb, blockExpert);
            if (fault == Fault.SkipsPaddingZeros) c.narrow(0, 2 * Fp8.Block, Fp8.Block).fill_(7f);   // block 2 is padding in the check
            return c;
        }

        public Tensor GemmKGrouped(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor segments, ScalarType outType = ScalarType.Float32)
        {
            if (fault == Fault.DropsSlicesPastRingK)
            {
                sa = sa.clone();
                var bounds = segments.data<int>().ToArray();
                for (int e = 0; e + 1 < bounds.Length; e++)
                {
                    long first = bounds[e] / Fp8.Block + RingSlices, end = bounds[e + 1] / Fp8.Block;
                    if (end > first) sa.narrow(1, first, end - first).zero_();
                }
            }
            var c = R.GemmKGrouped(qa, sa, qb, sb, segments, outType);
            if (fault == Fault.EmptySegment) c[1].fill_(1f);
            if (fault == Fault.Bf16OutputOff && outType == ScalarType.BFloat16) c = c * 1.03;   // a bf16 path 3% off
            return c;
        }
    }
}
