// The decode kernels' contract on the CPU: the GPU self-check passes the plain ops against themselves and names each
// kernel a bug is put into; and the arithmetic the CUDA kernels do (mirrored here in C#: bfloat16 rounding after each
// op for rotary, one warp's group-limited top-k for the router) gives what the plain ops give, so the kernels can equal
// them: rotary bit for bit in bfloat16 and float32, the router's expert sets exactly.
using PostTrain.Core.Kernels;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Kernels;

public sealed class DecodeKernelsTests
{
    private static string? Check(IDecodeKernels candidate) => DecodeKernels.SelfCheck(candidate, ReferenceDecodeKernels.Instance, CPU);

    [Fact]
    public void Self_check_passes_the_plain_ops_and_names_each_broken_kernel()
    {
        Assert.Null(DecodeKernels.SelfCheck(ReferenceDecodeKernels.Instance, ReferenceDecodeKernels.Instance, CPU));
        Assert.StartsWith("rope (Float32, 5x12x1x32, strided, interleave False)",
            Check(new Broken(ropeSign: true)));
        Assert.StartsWith("rope (Float32, 5x12x1x32, strided, interleave True)",
            Check(new Broken(ropeIgnoresInterleave: true)));
        Assert.StartsWith("masked softmax (Float32, 4x12x1x288)",
            Check(new Broken(softmaxIgnoresBias: true)));
        Assert.StartsWith("combine silu (Float32",
            Check(new Broken(combineIgnoresWeights: true)));
        Assert.StartsWith("router select (32 experts, 4 groups keep 2, top-4, bias True, normalise True): chose other experts",
            Check(new Broken(routerIgnoresBias: true)));
        Assert.StartsWith("router select (32 experts, 4 groups keep 2, top-4, bias True, normalise True) weights",
            Check(new Broken(routerSkipsNormalising: true)));
        Assert.StartsWith("latent append (Float32, r 256, 1 step(s), device columns, interleave False)",
            Check(new Broken(latentIgnoresNormWeight: true)));
        Assert.StartsWith("latent append (Float32, r 64, 2 step(s), cursor, interleave False)",
            Check(new Broken(latentWritesNextColumn: true)));
        Assert.StartsWith("sample race (vocab 1000, temperature 1, step on the host): other tokens",
            Check(new Broken(sampleOtherSeed: true)));
        // Each kernel is checked on its own: two broken kernels are both named, and only they.
        var each = DecodeKernels.SelfCheckEach(new Broken(ropeSign: true, routerIgnoresBias: true), ReferenceDecodeKernels.Instance, CPU);
        Assert.Equal(["rope", "router select"], each.Keys.OrderBy(k => k, StringComparer.Ordinal));
        // The expert order within a row is free (the model's top-k leaves it unspecified): a reversed order passes.
        Assert.Null(Check(new Broken(routerReversesOrder: true)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rotary_with_each_op_rounded_to_bfloat16_as_the_kernel_does_equals_the_plain_ops_bit_for_bit(bool interleave)
    {
        var gen = new Generator(11);
        const int B = 3, H = 4, T = 2, D = 32;
        var x = (randn(B, T, H, 48 + D, generator: gen) * 3).to(ScalarType.BFloat16).transpose(1, 2).narrow(-1, 48, D);
        var pos = randint(0, 3000, [B, T], generator: gen).to(ScalarType.Float32);
        var freqs = pos.unsqueeze(-1) * pow(10000.0, -arange(0, D, 2, dtype: ScalarType.Float32) / D);
        var cos = (freqs.cos() * 1.2).unsqueeze(1).contiguous();
        var sin = (freqs.sin() * 1.2).unsqueeze(1).contiguous();
        foreach (var dtype in new[] { ScalarType.BFloat16, ScalarType.Float32 })
        {
            var xd = x.to(dtype);
            Assert.True(DecodeKernels.RopeFits(xd, cos, sin));
            var plain = Rotary.ApplyPlain(xd, cos, sin, interleave).to(ScalarType.Float32).data<float>().ToArray();
            var xs = xd.to(ScalarType.Float32).contiguous().data<float>().ToArray();
            var cs = cos.data<float>().ToArray();
            var ss = sin.data<float>().ToArray();
            bool bf = dtype == ScalarType.BFloat16;
            float R(float v) => bf ? Bf16(v) : v;
            int half = D / 2;
            for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
            for (int j = 0; j < half; j++)
            {
                int row = ((b * H + h) * T + t) * D;
                float x1 = xs[row + (interleave ? 2 * j : j)], x2 = xs[row + (interleave ? 2 * j + 1 : j + half)];
                int a = (b * T + t) * half + j;
                float c = R(cs[a]), s = R(ss[a]);
                Assert.Equal(plain[row + j], R(R(x1 * c) - R(x2 * s)));
                Assert.Equal(plain[row + j + half], R(R(x2 * c) + R(x1 * s)));
            }
        }
    }

    [Theory]
    [InlineData(32, 4, 2, 4, true)]
    [InlineData(64, 1, 1, 6, true)]
    [InlineData(256, 8, 4, 8, true)]
    [InlineData(16, 1, 1, 2, false)]
    public void One_warps_group_limited_top_k_as_the_kernel_runs_it_chooses_the_routers_experts(int experts, int groups, int topkGroup, int k, bool withBias)
    {
        var gen = new Generator((ulong)(experts + k));
        const int N = 40;
        var logits = randn(N, (long)experts, generator: gen) * 2;
        var bias = withBias ? randn((long)experts, generator: gen) * 0.1 : null;
        var (idx, w, scores) = ReferenceDecodeKernels.Instance.RouterSelect(logits, bias, groups, topkGroup, k, true, 2.5);
        var ls = logits.data<float>().ToArray();
        var bs = bias?.data<float>().ToArray();
        var sc = scores.data<float>().ToArray();
        for (int n = 0; n < N; n++)
        {
            var score = new float[experts];
            var choice = new float[experts];
            for (int e = 0; e < experts; e++)
            {
                score[e] = 1f / (1f + MathF.Exp(-ls[n * experts + e]));
                choice[e] = bs is null ? score[e] : score[e] + bs[e];
                Assert.Equal(sc[n * experts + e], score[e], 1e-6f);   // torch's vectorised sigmoid: within an ulp
            }
            if (groups > 1)
            {
                int per = experts / groups;
                var gs = new float[groups];
                for (int g = 0; g < groups; g++)
                {
                    float a = float.NegativeInfinity, c2 = float.NegativeInfinity;
                    for (int e = g * per; e < (g + 1) * per; e++)
                        if (choice[e] > a) { c2 = a; a = choice[e]; } else if (choice[e] > c2) c2 = choice[e];
                    gs[g] = a + c2;
                }
                var keep = new bool[groups];
                for (int r = 0; r < topkGroup; r++)
                {
                    int at = -1;
                    for (int g = 0; g < groups; g++) if (!keep[g] && (at < 0 || gs[g] > gs[at])) at = g;
                    keep[at] = true;
                }
                for (int e = 0; e < experts; e++) if (!keep[e / per]) choice[e] = float.NegativeInfinity;
            }
            var chosen = new List<int>();
            float total = 0;
            for (int j = 0; j < k; j++)
            {
                int at = -1;
                for (int e = 0; e < experts; e++) if (!chosen.Contains(e) && (at < 0 || choice[e] > choice[at])) at = e;
                chosen.Add(at);
                total += score[at];
            }
            var want = chosen.OrderBy(e => e).ToArray();
            var got = idx[n].data<long>().Select(v => (int)v).ToArray();
            Assert.Equal(want, got.OrderBy(e => e).ToArray());
            var wRow = w[n].data<float>().ToArray();
            for (int j = 0; j < k; j++)
                Assert.Equal(score[got[j]] / (total + 1e-20f) * 2.5f, wRow[j], 1e-5f);
        }
    }

    [Fact]
    public void Latent_append_writes_the_normed_latent_and_rotated_key_at_the_cursor_or_the_device_columns_only()
    {
        var gen = new Generator(8);
        const long B = 2, T = 2, R = 8, Dr = 4, Cap = 6;
        var ckv = randn(B, T, R + Dr, generator: gen);
        var w = rand(R, generator: gen) + 0.5;
        var pos = tensor(new float[] { 3, 4, 7, 8 }).view(B, T);
        var freqs = pos.unsqueeze(-1) * tensor(new float[] { 1f, 0.01f });
        var cos = freqs.cos().unsqueeze(1).contiguous();
        var sin = freqs.sin().unsqueeze(1).contiguous();
        foreach (var columns in new[] { null, tensor(new long[] { 5, 1 }) })
        {
            var cache = full(B, Cap, R + Dr, 9f);
            ReferenceDecodeKernels.Instance.LatentAppend(ckv, w, 1e-6, cos, sin, false, cache, columns, 2);
            long[] cols = columns is null ? [2, 3] : [5, 1];
            for (long b = 0; b < B; b++)
            for (long c = 0; c < Cap; c++)
            {
                int t = Array.IndexOf(cols, c);
                if (t < 0) { Assert.Equal(9f * (R + Dr), cache[b, c].sum().item<float>()); continue; }
                var x = ckv[b, t];
                var lat = x.narrow(0, 0, R);
                var normed = lat * rsqrt(lat.pow(2).mean() + 1e-6) * w;
                var k1 = x.narrow(0, R, Dr / 2);
                var k2 = x.narrow(0, R + Dr / 2, Dr / 2);
                var cs = cos[b, 0, t];
                var sn = sin[b, 0, t];
                var want = cat([normed, k1 * cs - k2 * sn, k2 * cs + k1 * sn], 0);
                Assert.True(cache[b, c].allclose(want, rtol: 1e-5, atol: 1e-6), $"row {b}, column {c}");
            }
        }
    }

    [Fact]
    public void The_sampling_kernels_uniforms_from_the_seed_words_are_CounterRngs_bits()
    {
        // The kernel derives every uniform from (lo, hi, s1) = CounterRng.SeedWords(seed), the row key, the step and the
        // token with 32-bit wrapping arithmetic; mirrored here, it must give CounterRng's numbers exactly.
        static uint Mix(uint h) => PostTrain.Core.Generation.CounterRng.Mix(h);
        foreach (var seed in new[] { 0L, 12345L, -7L, 1L << 40 })
        {
            var (lo, hi, s1) = PostTrain.Core.Generation.CounterRng.SeedWords(seed);
            foreach (var (rowKey, step, token) in new[] { (0L, 0L, 0L), (3L, 41L, 31999L), (1_000_000L, 255L, 17L), (int.MaxValue - 1L, 9L, 123L) })
            {
                uint st = Mix(unchecked((uint)step * 0x27D4EB2Fu + hi));
                uint k = Mix(unchecked((uint)rowKey * 0x9E3779B1u + (lo ^ st)));
                uint h = Mix(unchecked(Mix(unchecked(k * 0x85EBCA77u + (uint)token)) + s1));
                float u = ((h >> 8) + 0.5f) * (1f / 16777216f);
                Assert.Equal(PostTrain.Core.Generation.CounterRng.UniformHost(seed, rowKey, step, token), u);
            }
        }
        // And the plain sampler agrees with the device-step overload the captured step uses.
        var logits = randn(6, 50, generator: new Generator(3)) * 2;
        var keys = arange(6, dtype: ScalarType.Int64) * 5;
        var (a, la) = ReferenceDecodeKernels.Instance.SampleRace(logits, 0.8, 99, keys, null, 12);
        var (b, lb) = ReferenceDecodeKernels.Instance.SampleRace(logits, 0.8, 99, keys, tensor(new long[] { 12 }), 0);
        Assert.True(a.equal(b).all().item<bool>());
        Assert.True(la.allclose(lb));
        var want = PostTrain.Core.Generation.Sampler.Sample(logits, new PostTrain.Core.Generation.SamplingParams(Temperature: 0.8, Seed: 99), keys, 12);
        Assert.True(a.equal(want.Tokens).all().item<bool>());
        Assert.True(la.allclose(want.LogProbs));
    }

    [Fact]
    public void The_fit_checks_take_the_decode_steps_operands_and_refuse_what_the_kernels_would_reject()
    {
        // What the kernels' C ABI refuses (and would throw mid-decode) must make the callers keep the plain ops instead.
        var gu = zeros(4, 8, 2, 16);
        var idx = zeros(4, 2, dtype: ScalarType.Int64);
        var w = zeros(4, 2);
        Assert.True(DecodeKernels.CombineFits(gu, idx, w));
        Assert.False(DecodeKernels.CombineFits(gu, zeros(2, 4, dtype: ScalarType.Int64).t(), w));          // strided experts
        Assert.False(DecodeKernels.CombineFits(gu, idx, w.to(ScalarType.BFloat16)));
        Assert.False(DecodeKernels.CombineFits(zeros(4, 8, 16, 2).transpose(2, 3), idx, w));               // strided gu

        var scores = zeros(3, 4, 2, 10);
        Assert.True(DecodeKernels.SoftmaxFits(scores, zeros(3, 1, 2, 10)));
        Assert.False(DecodeKernels.SoftmaxFits(scores, zeros(3, 1, 1, 10)));                               // broadcast bias
        Assert.False(DecodeKernels.SoftmaxFits(scores, zeros(3, 1, 2, 10, dtype: ScalarType.BFloat16)));

        var ckv = zeros(3, 1, 40);
        var cos = zeros(3, 1, 1, 4);
        var cache = zeros(3, 9, 40);
        Assert.True(DecodeKernels.LatentFits(ckv, zeros(32), cos, cos, cache, tensor(new long[] { 5 })));
        Assert.True(DecodeKernels.LatentFits(ckv, zeros(32), cos, cos, cache, null));
        Assert.False(DecodeKernels.LatentFits(ckv, zeros(32), cos, cos, cache, tensor(new[] { 5 })));       // int32 columns
        Assert.False(DecodeKernels.LatentFits(ckv, zeros(30), cos, cos, cache, null));                      // rope part 10: cos has 4 pairs
        Assert.False(DecodeKernels.LatentFits(ckv, zeros(32), cos, cos, zeros(3, 9, 40, dtype: ScalarType.BFloat16), null));

        var x = zeros(3, 2, 4, 16).transpose(1, 2);                                                        // (B, h, T, d) view
        Assert.True(DecodeKernels.RopeFits(x, zeros(3, 1, 2, 8), zeros(3, 1, 2, 8)));
        Assert.False(DecodeKernels.RopeFits(x, zeros(1, 1, 2, 8), zeros(1, 1, 2, 8)));                     // positions shared over rows
        Assert.False(DecodeKernels.RopeFits(zeros(3, 4, 16, 2).transpose(2, 3), zeros(3, 1, 2, 8), zeros(3, 1, 2, 8)));

        var logits = zeros(5, 100);
        Assert.True(DecodeKernels.SampleFits(logits, zeros(5, dtype: ScalarType.Int64), tensor(new long[] { 3 })));
        Assert.False(DecodeKernels.SampleFits(logits, zeros(5, dtype: ScalarType.Int32), null));
        Assert.False(DecodeKernels.SampleFits(logits.to(ScalarType.BFloat16), zeros(5, dtype: ScalarType.Int64), null));
        Assert.True(DecodeKernels.RouterFits(64, 1) && DecodeKernels.RouterFits(256, 8));
        Assert.False(DecodeKernels.RouterFits(1024, 8) || DecodeKernels.RouterFits(30, 4));
    }

    [Fact]
    public void Combine_silu_is_the_expert_output_scaled_by_the_tokens_weight_for_that_expert()
    {
        var gen = new Generator(5);
        var gu = randn(6, 8, 2, 10, generator: gen);
        var (idx, w, _) = ReferenceDecodeKernels.Instance.RouterSelect(randn(6, 8, generator: gen), null, 1, 1, 2, true, 1.0);
        var h = ReferenceDecodeKernels.Instance.CombineSilu(gu, idx, w);
        for (int n = 0; n < 6; n++)
        for (int e = 0; e < 8; e++)
        {
            var ids = idx[n].data<long>().ToArray();
            int j = Array.IndexOf(ids, (long)e);
            float weight = j < 0 ? 0f : w[n, j].item<float>();
            var g = gu[n, e, 0];
            var want = nn.functional.silu(g) * gu[n, e, 1] * weight;
            Assert.True(h[n, e].allclose(want, rtol: 1e-5, atol: 1e-6), $"token {n}, expert {e}");
        }
    }

    // Round to bfloat16 (nearest, ties to even) and back, as __float2bfloat16_rn does.
    private static float Bf16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        if (float.IsNaN(v)) return v;
        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000u);
    }

    /// <summary>The plain ops with one bug put in: a stand-in for a wrong kernel.</summary>
    private sealed class Broken(bool ropeSign = false, bool ropeIgnoresInterleave = false, bool softmaxIgnoresBias = false,
        bool combineIgnoresWeights = false, bool routerIgnoresBias = false, bool routerSkipsNormalising = false,
        bool routerReversesOrder = false, bool latentIgnoresNormWeight = false, bool latentWritesNextColumn = false,
        bool sampleOtherSeed = false) : IDecodeKernels
    {
        private readonly ReferenceDecodeKernels inner = ReferenceDecodeKernels.Instance;

        public Tensor Rope(Tensor x, Tensor cos, Tensor sin, bool interleave) =>
            inner.Rope(x, cos, ropeSign ? -sin : sin, interleave && !ropeIgnoresInterleave);

        public Tensor MaskedSoftmax(Tensor scores, Tensor bias, double scale) =>
            inner.MaskedSoftmax(scores, softmaxIgnoresBias ? zeros_like(bias) : bias, scale);

        public (Tensor Indices, Tensor Weights, Tensor Scores) RouterSelect(Tensor logits, Tensor? bias, int groups, int topkGroup, int k, bool normalize, double scaling)
        {
            var (i, w, s) = inner.RouterSelect(logits, routerIgnoresBias ? null : bias, groups, topkGroup, k, normalize && !routerSkipsNormalising, scaling);
            return routerReversesOrder ? (i.flip(1), w.flip(1), s) : (i, w, s);
        }

        public Tensor CombineSilu(Tensor gu, Tensor indices, Tensor weights) =>
            inner.CombineSilu(gu, indices, combineIgnoresWeights ? ones_like(weights) : weights);

        public (Tensor Tokens, Tensor LogProbs) SampleRace(Tensor logits, double temperature, long seed, Tensor rowKeys, Tensor? deviceStep, long step) =>
            inner.SampleRace(logits, temperature, sampleOtherSeed ? seed + 1 : seed, rowKeys, deviceStep, step);

        public void LatentAppend(Tensor ckv, Tensor w, double eps, Tensor cos, Tensor sin, bool interleave, Tensor cache, Tensor? columns, long cursor) =>
            inner.LatentAppend(ckv, latentIgnoresNormWeight ? ones_like(w) : w, eps, cos, sin, interleave, cache,
                columns, latentWritesNextColumn ? cursor + 1 : cursor);
    }
}
