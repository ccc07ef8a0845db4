// Fused kernels for the decode step (native/kernels/posttrain_decode.cu): rotary embedding, the attention's scaled
// masked softmax, V3 router selection from the logits, the all-experts FFN's SiLU-times-routing-weight, MLA's key side
// (latent norm, key rotary, cache write), and unfiltered temperature sampling (CounterRng noise, exponential race). Each replaces
// 5-16 small kernels of the plain ops (ReferenceDecodeKernels, which the model runs everywhere else) in every layer of a
// decode step. Used without autograd only (decode, no-grad forwards), on CUDA, when libposttrain_kernels.so has them and
// their self-check on the device passed: once per device at the first use (an eager step: decoding runs a step eagerly
// before it captures one), every kernel against the plain ops on random inputs at the bench models' shapes and the
// 16B model's router shape, both dtypes, strided and interleaved rotary input, masked columns. Each kernel is checked
// on its own: one that fails keeps the plain ops for that kernel only (PartialDecodeKernels), and the decision is printed
// once with the reason. POSTTRAIN_DECODE_KERNELS=0 turns them all off.
using System.Runtime.InteropServices;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Kernels;

/// <summary>The decode kernels' contract (CUDA tensors; the reference also runs on the CPU).</summary>
public interface IDecodeKernels
{
    /// <summary>x (B, h, T, d), unit stride in d; cos, sin (B, 1, T, d/2) float32 -> (B, h, T, d) in x's dtype.</summary>
    Tensor Rope(Tensor x, Tensor cos, Tensor sin, bool interleave);

    /// <summary>scores (B, h, T, S), bias (B, 1, T, S) float32 -> softmax(float(scores) * scale + bias) in the scores' dtype.</summary>
    Tensor MaskedSoftmax(Tensor scores, Tensor bias, double scale);

    /// <summary>V3 routing from fp32 logits (N, E): experts (N, k) int64 (any order), gate weights (N, k) fp32 in the
    /// same order, sigmoid scores (N, E).</summary>
    (Tensor Indices, Tensor Weights, Tensor Scores) RouterSelect(Tensor logits, Tensor? bias, int groups, int topkGroup, int k, bool normalize, double scaling);

    /// <summary>gu (N, E, 2, I) of each expert's [gate; up] rows, experts (N, k), weights (N, k) fp32 ->
    /// silu(gate) * up * weight_e (N, E, I), zero for experts not chosen.</summary>
    Tensor CombineSilu(Tensor gu, Tensor indices, Tensor weights);

    /// <summary>MLA's key side into the latent cache: ckv (B, T, r + dr); [RMSNorm(latent) * w | rope(k_rope)] written to
    /// cache (B, Cap, r + dr) at columns[t], or at cursor + t when <paramref name="columns"/> is null.</summary>
    void LatentAppend(Tensor ckv, Tensor w, double eps, Tensor cos, Tensor sin, bool interleave, Tensor cache, Tensor? columns, long cursor);

    /// <summary>Unfiltered temperature sampling as Generation.Sampler does it (CounterRng noise, exponential race): logits
    /// (B, V) fp32, row keys (B) int64, the step from <paramref name="deviceStep"/> (1) int64 or else
    /// <paramref name="step"/> -> tokens (B) int64, their log-probs under logits / T (B) fp32.</summary>
    (Tensor Tokens, Tensor LogProbs) SampleRace(Tensor logits, double temperature, long seed, Tensor rowKeys, Tensor? deviceStep, long step);
}

/// <summary>The plain ops the model runs without the kernels (and the self-check's reference).</summary>
public sealed class ReferenceDecodeKernels : IDecodeKernels
{
    public static readonly ReferenceDecodeKernels Instance = new();

    public Tensor Rope(Tensor x, Tensor cos, Tensor sin, bool interleave) => Rotary.ApplyPlain(x, cos, sin, interleave);

    public Tensor MaskedSoftmax(Tensor scores, Tensor bias, double scale)
    {
        using var scope = NewDisposeScope();
        // mul, not mul_: for float32 scores to() is the input itself, which must stay as it is.
        return scores.to(ScalarType.Float32).mul(scale).add_(bias).softmax(-1).to(scores.dtype).MoveToOuterDisposeScope();
    }

    public (Tensor Indices, Tensor Weights, Tensor Scores) RouterSelect(Tensor logits, Tensor? bias, int groups, int topkGroup, int k, bool normalize, double scaling)
    {
        using var scope = NewDisposeScope();
        var scores = logits.sigmoid();
        var idx = Router.ChooseExperts(scores, bias, groups, topkGroup, k);
        var w = Router.GateWeights(scores, idx, normalize, scaling);
        return (idx.MoveToOuterDisposeScope(), w.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }

    public Tensor CombineSilu(Tensor gu, Tensor indices, Tensor weights)
    {
        using var scope = NewDisposeScope();
        var combine = Combine(indices, weights, gu.shape[1]);                         // (N, E) fp32
        var hdn = FusedOps.SiluMul(gu.select(2, 0), gu.select(2, 1));                // (N, E, I)
        return (hdn * combine.to(gu.dtype).unsqueeze(-1)).MoveToOuterDisposeScope();
    }

    public void LatentAppend(Tensor ckv, Tensor w, double eps, Tensor cos, Tensor sin, bool interleave, Tensor cache, Tensor? columns, long cursor)
    {
        using var scope = NewDisposeScope();
        long r = w.shape[0], t = ckv.shape[1];
        var latent = Generation.AbsorbedAttention.Norm(ckv.narrow(-1, 0, r), w, eps);                          // (B, T, r)
        var kRot = Rotary.ApplyPlain(ckv.narrow(-1, r, ckv.shape[2] - r).unsqueeze(1), cos, sin, interleave).squeeze(1); // (B, T, dr)
        var entry = cat([latent, kRot], -1);
        if (columns is not null) cache.index_copy_(1, columns, entry);
        else cache.narrow(1, cursor, t).copy_(entry);
    }

    public (Tensor Tokens, Tensor LogProbs) SampleRace(Tensor logits, double temperature, long seed, Tensor rowKeys, Tensor? deviceStep, long step) =>
        Generation.Sampler.RacePlain(logits, temperature, seed, rowKeys, deviceStep, step);

    /// <summary>The routing weights as a dense (N, E) fp32 matrix, zero where an expert is not chosen.</summary>
    public static Tensor Combine(Tensor indices, Tensor weights, long experts) =>
        zeros(indices.shape[0], experts, dtype: ScalarType.Float32, device: indices.device).scatter_(1, indices, weights);
}

public static class DecodeKernels
{
    public const string SwitchEnvVar = "POSTTRAIN_DECODE_KERNELS";

    private static readonly PerDeviceChoice<IDecodeKernels> PerDevice = new("decode kernels", (device, _) => Choose(device));
    private static readonly Lazy<(NativeDecodeKernels? Kernels, string? Error)> Library = new(NativeDecodeKernels.Load);

    /// <summary>The kernels to use for <paramref name="x"/> when no gradient is needed, or null for the plain ops.</summary>
    public static IDecodeKernels? For(Tensor x) => Enabled ? PerDevice.For(x) : null;

    /// <summary>The kernels for <paramref name="x"/> when they are on there and <paramref name="fits"/> accepts the
    /// operands, else the plain ops: the one place the call sites choose.</summary>
    public static IDecodeKernels Pick(Tensor x, Func<bool> fits) =>
        For(x) is { } kernels && fits() ? kernels : ReferenceDecodeKernels.Instance;

    /// <summary>Process-wide switch (default on), for same-process comparisons; POSTTRAIN_DECODE_KERNELS=0 turns them off
    /// for good.</summary>
    public static bool Enabled { get; set; } = true;

    /// <summary>What For decided per device so far.</summary>
    public static IReadOnlyDictionary<int, string> Status => PerDevice.Status;

    /// <summary>Uses <paramref name="kernels"/> for CPU tensors in this async flow until disposed (tests: the call sites'
    /// wiring on the reference).</summary>
    internal static IDisposable UseOnCpu(IDecodeKernels kernels) => PerDevice.UseOnCpu(kernels);

    /// <summary>Whether the rotary kernel takes these operands (cos/sin laid out per row and step, as Rotary.Angles makes them).</summary>
    public static bool RopeFits(Tensor x, Tensor cos, Tensor sin) =>
        x.dim() == 4 && x.stride(3) == 1 && x.shape[3] % 2 == 0 && (x.dtype == ScalarType.Float32 || x.dtype == ScalarType.BFloat16)
        && cos.dtype == ScalarType.Float32 && sin.dtype == ScalarType.Float32 && cos.is_contiguous() && sin.is_contiguous()
        && cos.shape.SequenceEqual(new[] { x.shape[0], 1, x.shape[2], x.shape[3] / 2 }) && sin.shape.SequenceEqual(cos.shape);

    /// <summary>Whether the softmax kernel takes these operands (bias float32 (B, 1, T, S), contiguous).</summary>
    public static bool SoftmaxFits(Tensor scores, Tensor bias) =>
        scores.dim() == 4 && scores.is_contiguous() && (scores.dtype == ScalarType.Float32 || scores.dtype == ScalarType.BFloat16)
        && bias.dtype == ScalarType.Float32 && bias.is_contiguous() && scores.shape[3] <= 12_000
        && bias.shape.SequenceEqual(new[] { scores.shape[0], 1, scores.shape[2], scores.shape[3] });

    /// <summary>Whether the latent-append kernel takes these operands.</summary>
    public static bool LatentFits(Tensor ckv, Tensor w, Tensor cos, Tensor sin, Tensor cache, Tensor? columns)
    {
        if (columns is not null && (columns.dtype != ScalarType.Int64 || !columns.is_contiguous() || columns.numel() != ckv.shape[1])) return false;
        if (ckv.dim() != 3 || cache.dim() != 3 || !ckv.is_contiguous() || !cache.is_contiguous() || cache.dtype != ckv.dtype
            || (ckv.dtype != ScalarType.Float32 && ckv.dtype != ScalarType.BFloat16) || w.dim() != 1 || !w.is_contiguous()
            || (w.dtype != ScalarType.Float32 && w.dtype != ScalarType.BFloat16)) return false;
        long dr = ckv.shape[2] - w.shape[0];
        return dr > 0 && dr % 2 == 0 && cache.shape[0] == ckv.shape[0] && cache.shape[2] == ckv.shape[2]
            && cos.dtype == ScalarType.Float32 && sin.dtype == ScalarType.Float32 && cos.is_contiguous() && sin.is_contiguous()
            && cos.shape.SequenceEqual(new[] { ckv.shape[0], 1, ckv.shape[1], dr / 2 }) && sin.shape.SequenceEqual(cos.shape);
    }

    /// <summary>Whether the combine kernel takes these operands (all contiguous; experts int64, weights float32).</summary>
    public static bool CombineFits(Tensor gu, Tensor indices, Tensor weights) =>
        gu.dim() == 4 && gu.shape[2] == 2 && gu.is_contiguous() && (gu.dtype == ScalarType.Float32 || gu.dtype == ScalarType.BFloat16)
        && indices.dim() == 2 && indices.dtype == ScalarType.Int64 && indices.is_contiguous() && indices.shape[0] == gu.shape[0]
        && weights.dtype == ScalarType.Float32 && weights.is_contiguous() && weights.numel() == indices.numel();

    /// <summary>Whether the sampling kernel takes these operands.</summary>
    public static bool SampleFits(Tensor logits, Tensor rowKeys, Tensor? deviceStep) =>
        logits.dim() == 2 && logits.dtype == ScalarType.Float32 && logits.is_contiguous() && logits.shape[1] < int.MaxValue
        && rowKeys.dtype == ScalarType.Int64 && rowKeys.is_contiguous() && rowKeys.numel() == logits.shape[0]
        && (deviceStep is null || (deviceStep.dtype == ScalarType.Int64 && deviceStep.numel() == 1));

    /// <summary>Whether the router kernel takes this routing (at most 512 experts, 32 groups of equal size).</summary>
    public static bool RouterFits(int experts, int groups) => experts is >= 1 and <= 512 && groups is >= 1 and <= 32 && experts % groups == 0;

    private static (IDecodeKernels? Kernels, string Status) Choose(Device device)
    {
        if (Environment.GetEnvironmentVariable(SwitchEnvVar) == "0") return (null, $"off ({SwitchEnvVar}=0)");
        var (native, error) = Library.Value;
        if (native is null) return (null, "off: " + error);
        return PerKernelChecks.Decide<IDecodeKernels>(native, SelfCheckEach(native, ReferenceDecodeKernels.Instance, device), Kernels.Length,
            off => new PartialDecodeKernels(native, ReferenceDecodeKernels.Instance, off));
    }

    /// <summary>The kernels, by the names the self-check reports them under.</summary>
    internal static readonly string[] Kernels = ["rope", "masked softmax", "combine silu", "latent append", "router select", "sample race"];

    /// <summary>Compares <paramref name="candidate"/> with <paramref name="reference"/> on random inputs on
    /// <paramref name="device"/>; null when they agree (float32: 1e-5 of the values' scale; bfloat16: 1e-2; the router's
    /// expert sets and the sampled tokens exactly), else the first kernel and case that differed.</summary>
    public static string? SelfCheck(IDecodeKernels candidate, IDecodeKernels reference, Device device) =>
        SelfCheckEach(candidate, reference, device).Values.FirstOrDefault();

    /// <summary>Each kernel's check on its own (a failure in one does not stop the others): the failing kernels, each with
    /// its first failing case.</summary>
    public static IReadOnlyDictionary<string, string> SelfCheckEach(IDecodeKernels candidate, IDecodeKernels reference, Device device)
    {
        var gen = new TorchSharp.torch.Generator(4321);   // CPU draws, then moved (TorchSharp's CUDA generator is a CPU one)
        Tensor Randn(params long[] shape) => randn(shape, generator: gen).to(device);
        var dtypes = new[] { ScalarType.Float32, ScalarType.BFloat16 };
        static double Tol(ScalarType dtype) => dtype == ScalarType.BFloat16 ? 1e-2 : 1e-5;

        string? Rope()
        {
            foreach (var dtype in dtypes)
            foreach (var (b, h, t, d) in new[] { (5L, 12L, 1L, 32L), (3L, 4L, 2L, 64L) })
            foreach (var interleave in new[] { false, true })
            {
                var whole = (Randn(b, t, h, 64 + d) * 2).to(dtype).transpose(1, 2);      // (B, h, T, 64 + d): strided
                var x = whole.narrow(-1, 64, d);
                var pos = randint(0, 4000, [b, t], generator: gen).to(device).to(ScalarType.Float32);
                var freqs = pos.unsqueeze(-1) * pow(10000.0, -arange(0, d, 2, dtype: ScalarType.Float32, device: device) / d);
                var cos = (freqs.cos() * 1.1).unsqueeze(1).contiguous();
                var sin = (freqs.sin() * 1.1).unsqueeze(1).contiguous();
                var what = $"rope ({dtype}, {b}x{h}x{t}x{d}, strided, interleave {interleave})";
                if (Differs(candidate.Rope(x, cos, sin, interleave), reference.Rope(x, cos, sin, interleave), Tol(dtype)) is { } e) return $"{what}: {e}";
            }
            return null;
        }

        string? Softmax()
        {
            foreach (var dtype in dtypes)
            foreach (var (b, h, t, s) in new[] { (4L, 12L, 1L, 288L), (2L, 3L, 2L, 1000L) })
            {
                var scores = (Randn(b, h, t, s) * 4).to(dtype);
                var bias = where(rand(b, 1, t, s, generator: gen).to(device) < 0.3, float.NegativeInfinity, 0f);
                bias[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Colon, 0] = tensor(0f);   // every row keeps a column
                var what = $"masked softmax ({dtype}, {b}x{h}x{t}x{s})";
                if (Differs(candidate.MaskedSoftmax(scores, bias, 0.125), reference.MaskedSoftmax(scores, bias, 0.125), Tol(dtype)) is { } e) return $"{what}: {e}";
            }
            return null;
        }

        string? Combine()
        {
            foreach (var dtype in dtypes)
            {
                var gu = (Randn(37, 32, 2, 384) * 2).to(dtype);
                var (idx, w, _) = reference.RouterSelect(Randn(37, 32), null, 4, 2, 4, true, 2.5);
                var what = $"combine silu ({dtype}, 37 tokens, 32 experts top-4, 384)";
                if (Differs(candidate.CombineSilu(gu, idx, w), reference.CombineSilu(gu, idx, w), Tol(dtype)) is { } e) return $"{what}: {e}";
            }
            return null;
        }

        string? Latent()
        {
            foreach (var dtype in dtypes)
            foreach (var (r, t, useColumns) in new[] { (256L, 1L, true), (64L, 2L, false) })
            foreach (var interleave in new[] { false, true })
            {
                const long b = 6, cap = 9, dr = 32;
                var ckv = (Randn(b, t, r + dr) * 3).to(dtype);
                var w = (rand(r, generator: gen).to(device) + 0.5).to(dtype);
                var pos = randint(0, 4000, [b, t], generator: gen).to(device).to(ScalarType.Float32);
                var freqs = pos.unsqueeze(-1) * pow(10000.0, -arange(0, dr, 2, dtype: ScalarType.Float32, device: device) / dr);
                var cos = freqs.cos().unsqueeze(1).contiguous();
                var sin = freqs.sin().unsqueeze(1).contiguous();
                var before = Randn(b, cap, r + dr).to(dtype);
                var columns = useColumns ? tensor(new long[] { 7 }, device: device) : null;
                var got = before.clone();
                var want = before.clone();
                candidate.LatentAppend(ckv, w, 1e-6, cos, sin, interleave, got, columns, 3);
                reference.LatentAppend(ckv, w, 1e-6, cos, sin, interleave, want, columns, 3);
                var what = $"latent append ({dtype}, r {r}, {t} step(s), {(useColumns ? "device columns" : "cursor")}, interleave {interleave})";
                if (Differs(got, want, Tol(dtype)) is { } e) return $"{what}: {e}";
            }
            return null;
        }

        // Router shapes: bench-moe (32 experts, 4 groups keep 2, top-4), the 16B model (64, no groups, top-6),
        // DeepSeek-V3 (256, 8 groups keep 4, top-8), with and without the correction bias and normalisation.
        string? Router()
        {
            foreach (var (e, g, tg, k, withBias, norm) in new[] { (32, 4, 2, 4, true, true), (64, 1, 1, 6, true, true), (256, 8, 4, 8, true, true), (64, 1, 1, 6, false, false) })
            {
                var logits = Randn(45, e) * 2;
                var bias = withBias ? Randn(e) * 0.1 : null;
                var (i1, w1, s1) = candidate.RouterSelect(logits, bias, g, tg, k, norm, 2.5);
                var (i0, w0, s0) = reference.RouterSelect(logits, bias, g, tg, k, norm, 2.5);
                var what = $"router select ({e} experts, {g} groups keep {tg}, top-{k}, bias {withBias}, normalise {norm})";
                if (Differs(s1, s0, 1e-6) is { } e1) return $"{what} scores: {e1}";
                var (o1, p1) = i1.sort(-1);
                var (o0, p0) = i0.sort(-1);
                if (!o1.equal(o0).all().item<bool>()) return $"{what}: chose other experts";
                if (Differs(w1.gather(1, p1), w0.gather(1, p0), 1e-5) is { } e2) return $"{what} weights: {e2}";
            }
            return null;
        }

        // Sampling: vocabularies of 1,000 and 32,000 (bench-moe), T = 1 and 0.7, the step from the host and from the device.
        // Tokens must be the same (the uniforms are the same bits; only a tie within float rounding could part them).
        string? Sample()
        {
            foreach (var (vocab, temperature, onDevice) in new[] { (1000L, 1.0, false), (32000L, 0.7, true) })
            {
                var logits = Randn(24, vocab) * 3;
                var keys = arange(24, dtype: ScalarType.Int64, device: device) * 7 + 3;
                var step = onDevice ? tensor(new long[] { 41 }, device: device) : null;
                var (t1, l1) = candidate.SampleRace(logits, temperature, 12345, keys, step, 41);
                var (t0, l0) = reference.SampleRace(logits, temperature, 12345, keys, step, 41);
                var what = $"sample race (vocab {vocab}, temperature {temperature}, step on the {(onDevice ? "device" : "host")})";
                if (!t1.equal(t0).all().item<bool>()) return $"{what}: other tokens";
                if (Differs(l1, l0, 1e-5) is { } e) return $"{what} log-probs: {e}";
            }
            return null;
        }

        return PerKernelChecks.RunEach(Kernels, [Rope, Softmax, Combine, Latent, Router, Sample]);
    }

    private static string? Differs(Tensor got, Tensor want, double tol) => PerKernelChecks.Differs(got, want, tol);
}

/// <summary>The native decode kernels through P/Invoke.</summary>
internal sealed class NativeDecodeKernels : IDecodeKernels
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int RopeFn(IntPtr x, IntPtr cos, IntPtr sin, IntPtr o, int interleave);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int SoftmaxFn(IntPtr scores, IntPtr bias, double scale, IntPtr probs);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int RouterFn(IntPtr logits, IntPtr bias, int groups, int topkGroup, int k, int normalize, double scaling, IntPtr scores, IntPtr indices, IntPtr weights);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int CombineFn(IntPtr gu, IntPtr indices, IntPtr weights, IntPtr h);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int SampleFn(IntPtr logits, IntPtr rowKeys, IntPtr step, long hostStep, uint lo, uint hi, uint s1, double temperature, IntPtr tokens, IntPtr logProbs);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int LatentFn(IntPtr ckv, IntPtr w, double eps, IntPtr cos, IntPtr sin, int interleave, IntPtr cache, IntPtr columns, long cursor);

    private RopeFn rope = null!;
    private SoftmaxFn softmax = null!;
    private RouterFn router = null!;
    private CombineFn combine = null!;
    private LatentFn latent = null!;
    private SampleFn sample = null!;

    public static (NativeDecodeKernels?, string?) Load()
    {
        var (lib, path, error) = NativeKernelLibrary.Value;
        if (error is not null) return (null, error);
        T Fn<T>(string name) where T : Delegate => NativeKernelLibrary.Function<T>(lib, name);
        try
        {
            return (new NativeDecodeKernels
            {
                rope = Fn<RopeFn>("ptk_rope"),
                softmax = Fn<SoftmaxFn>("ptk_masked_softmax"),
                router = Fn<RouterFn>("ptk_router_select"),
                combine = Fn<CombineFn>("ptk_combine_silu"),
                latent = Fn<LatentFn>("ptk_latent_append"),
                sample = Fn<SampleFn>("ptk_sample_race"),
            }, null);
        }
        catch (EntryPointNotFoundException e)
        {
            return (null, $"{path}: {e.Message} (a library built before the decode kernels: rebuild it with scripts/gpu/build-kernels.sh)");
        }
    }

    private static void Check(int rc, string what) => NativeKernelLibrary.Check(rc, $"decode kernel {what}");

    public Tensor Rope(Tensor x, Tensor cos, Tensor sin, bool interleave)
    {
        var o = empty(x.shape, dtype: x.dtype, device: x.device);
        Check(rope(x.Handle, cos.Handle, sin.Handle, o.Handle, interleave ? 1 : 0), "rope");
        return o;
    }

    public Tensor MaskedSoftmax(Tensor scores, Tensor bias, double scale)
    {
        var p = empty_like(scores);
        Check(softmax(scores.Handle, bias.Handle, scale, p.Handle), "masked_softmax");
        return p;
    }

    public (Tensor Indices, Tensor Weights, Tensor Scores) RouterSelect(Tensor logits, Tensor? bias, int groups, int topkGroup, int k, bool normalize, double scaling)
    {
        long n = logits.shape[0];
        var scores = empty_like(logits);
        var idx = empty(n, k, dtype: ScalarType.Int64, device: logits.device);
        var w = empty(n, k, dtype: ScalarType.Float32, device: logits.device);
        Check(router(logits.Handle, bias?.Handle ?? IntPtr.Zero, groups, topkGroup, k, normalize ? 1 : 0, scaling, scores.Handle, idx.Handle, w.Handle), "router_select");
        return (idx, w, scores);
    }

    public Tensor CombineSilu(Tensor gu, Tensor indices, Tensor weights)
    {
        var h = empty(gu.shape[0], gu.shape[1], gu.shape[3], dtype: gu.dtype, device: gu.device);
        Check(combine(gu.Handle, indices.Handle, weights.Handle, h.Handle), "combine_silu");
        return h;
    }

    public (Tensor Tokens, Tensor LogProbs) SampleRace(Tensor logits, double temperature, long seed, Tensor rowKeys, Tensor? deviceStep, long step)
    {
        var (lo, hi, s1) = Generation.CounterRng.SeedWords(seed);
        var tokens = empty(logits.shape[0], dtype: ScalarType.Int64, device: logits.device);
        var lp = empty(logits.shape[0], dtype: ScalarType.Float32, device: logits.device);
        Check(sample(logits.Handle, rowKeys.Handle, deviceStep?.Handle ?? IntPtr.Zero, step, lo, hi, s1, temperature, tokens.Handle, lp.Handle), "sample_race");
        return (tokens, lp);
    }

    public void LatentAppend(Tensor ckv, Tensor w, double eps, Tensor cos, Tensor sin, bool interleave, Tensor cache, Tensor? columns, long cursor) =>
        Check(latent(ckv.Handle, w.Handle, eps, cos.Handle, sin.Handle, interleave ? 1 : 0, cache.Handle, columns?.Handle ?? IntPtr.Zero, cursor), "latent_append");
}

/// <summary>The native kernels that passed their self-check, the plain ops for the ones that did not.</summary>
internal sealed class PartialDecodeKernels(IDecodeKernels native, IDecodeKernels plain, IReadOnlySet<string> off) : IDecodeKernels
{
    private IDecodeKernels Pick(string kernel) => off.Contains(kernel) ? plain : native;

    public Tensor Rope(Tensor x, Tensor cos, Tensor sin, bool interleave) => Pick("rope").Rope(x, cos, sin, interleave);

    public Tensor MaskedSoftmax(Tensor scores, Tensor bias, double scale) => Pick("masked softmax").MaskedSoftmax(scores, bias, scale);

    public (Tensor Indices, Tensor Weights, Tensor Scores) RouterSelect(Tensor logits, Tensor? bias, int groups, int topkGroup, int k, bool normalize, double scaling) =>
        Pick("router select").RouterSelect(logits, bias, groups, topkGroup, k, normalize, scaling);

    public Tensor CombineSilu(Tensor gu, Tensor indices, Tensor weights) => Pick("combine silu").CombineSilu(gu, indices, weights);

    public void LatentAppend(Tensor ckv, Tensor w, double eps, Tensor cos, Tensor sin, bool interleave, Tensor cache, Tensor? columns, long cursor) =>
        Pick("latent append").LatentAppend(ckv, w, eps, cos, sin, interleave, cache, columns, cursor);

    public (Tensor Tokens, Tensor LogProbs) SampleRace(Tensor logits, double temperature, long seed, Tensor rowKeys, Tensor? deviceStep, long step) =>
        Pick("sample race").SampleRace(logits, temperature, seed, rowKeys, deviceStep, step);
}
