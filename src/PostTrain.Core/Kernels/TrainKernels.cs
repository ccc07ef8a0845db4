// Fused kernels for the training step's small ops, forward and backward (native/kernels/posttrain_train.cu):
//   mla qkv       MLA's attention operands from the up-projections in one pass (q's rotary and prescale, k's rotary
//                 broadcast over heads, the cats, v's padding) and the transpose of that map in one pass.
//   moe combine   the routed experts' outputs weighted and summed per token as a gather (no fp32 (N k, H) product, no
//                 atomics), and its backward (dys and the gate weights' gradient) in one pass per token.
//   moe gather    the dispatch's backward (x gathered into expert order): a per-token sum in fp32 instead of an index_add
//                 with bfloat16 atomics.
// The reference (ReferenceTrainKernels) holds the plain ops the model runs without the kernels (the forward) and the
// backward written as explicit formulas, which the CPU tests check against autograd of the plain ops. On CUDA the native
// kernels are used where libposttrain_kernels.so has them and each one's self-check on the device passed (once per
// device, at the first use, an eager step: the fast training step runs two eager steps before it captures one); one
// that fails keeps the plain ops for itself only, and the decision is printed once with the reason.
// POSTTRAIN_TRAIN_KERNELS=0 turns them all off.
using System.Runtime.InteropServices;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Kernels;

/// <summary>MLA's head layout: heads, the q/k head's no-rope and rope widths, the value width, and the width V is padded to
/// for SDPA (VOut >= VDim).</summary>
public readonly record struct MlaHeads(int Heads, int Nope, int Rope, int VDim, int VOut)
{
    public int QkDim => Nope + Rope;
}

/// <summary>The training kernels' contract. Activations float32 or bfloat16, one dtype per call.</summary>
public interface ITrainKernels
{
    /// <summary>q (B, T, h (nope + rope)), kv (B, T, h (nope + v)) contiguous, kRope (B, T, rope) with unit stride in the
    /// last dim, cos/sin (B or 1, 1, T, rope/2) float32 -> Q = [q_nope, rope(q_rope)] * prescale, K = [k_nope,
    /// rope(k_rope)], V = v padded with zeros to VOut: (B, h, T, .) contiguous.</summary>
    (Tensor Q, Tensor K, Tensor V) MlaQkv(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave);

    /// <summary>The transpose of <see cref="MlaQkv"/>: dQ, dK (B, h, T, nope + rope), dV (B, h, T, VOut), unit stride in the
    /// last dim -> dq (B, T, h (nope + rope)), dkv (B, T, h (nope + v)), dkRope (B, T, rope).</summary>
    (Tensor Dq, Tensor Dkv, Tensor DkRope) MlaQkvBackward(Tensor dQ, Tensor dK, Tensor dV, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave);

    /// <summary>ys (R, H), w (N, k) float32, pos (N, k) int64 (rows of ys) -> y[n] = sum_j w[n, j] ys[pos[n, j]] (N, H),
    /// fp32 sums, in ys's dtype.</summary>
    Tensor MoeCombine(Tensor ys, Tensor w, Tensor pos);

    /// <summary>The gradients of <see cref="MoeCombine"/>: dys (R, H) (pos covers every row), dw (N, k) float32.</summary>
    (Tensor Dys, Tensor Dw) MoeCombineBackward(Tensor dy, Tensor ys, Tensor w, Tensor pos);

    /// <summary>dxs (R, H), pos (N, k) -> dx[n] = sum_j dxs[pos[n, j]] (N, H), fp32 sums, in dxs's dtype.</summary>
    Tensor MoeGatherSum(Tensor dxs, Tensor pos);
}

/// <summary>The plain ops (forwards) and the explicit backward formulas.</summary>
public sealed class ReferenceTrainKernels : ITrainKernels
{
    public static readonly ReferenceTrainKernels Instance = new();

    public (Tensor Q, Tensor K, Tensor V) MlaQkv(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave) =>
        PlainQkv(q, kv, kRope, cos, sin, d, prescale, x => Rotary.ApplyPlain(x, cos, sin, interleave));

    /// <summary>MLA's attention operands in plain ops (what MlaAttention runs without the kernels); <paramref name="rotate"/>
    /// rotates a (B, heads, T, rope) tensor.</summary>
    public static (Tensor Q, Tensor K, Tensor V) PlainQkv(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d, double prescale,
        Func<Tensor, Tensor> rotate)
    {
        using var scope = NewDisposeScope();
        long B = q.shape[0], T = q.shape[1];
        var qh = q.view(B, T, d.Heads, d.QkDim).transpose(1, 2);                              // (B, h, T, qk)
        var qRot = rotate(qh.narrow(-1, d.Nope, d.Rope));
        var kRot = rotate(kRope.view(B, 1, T, d.Rope));                                     // (B, 1, T, rope)
        var kvh = kv.view(B, T, d.Heads, d.Nope + d.VDim).transpose(1, 2);                  // (B, h, T, nope + v)
        var k = cat([kvh.narrow(-1, 0, d.Nope), kRot.expand(B, d.Heads, T, d.Rope)], -1);
        var qFull = cat([qh.narrow(-1, 0, d.Nope), qRot], -1);
        if (prescale != 1.0) qFull = qFull * prescale;
        var v = kvh.narrow(-1, d.Nope, d.VDim);
        if (d.VOut > d.VDim) v = nn.functional.pad(v, [0, d.VOut - d.VDim]);
        return (qFull.MoveToOuterDisposeScope(), k.MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }

    public (Tensor Dq, Tensor Dkv, Tensor DkRope) MlaQkvBackward(Tensor dQ, Tensor dK, Tensor dV, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave)
    {
        using var scope = NewDisposeScope();
        long B = dQ.shape[0], T = dQ.shape[2];
        var dqFull = prescale != 1.0 ? dQ * prescale : dQ;                                  // rounded like the forward's multiply
        var dqRope = RotateBack(dqFull.narrow(-1, d.Nope, d.Rope), cos, sin, interleave).to(dQ.dtype);
        var dq = cat([dqFull.narrow(-1, 0, d.Nope), dqRope], -1).transpose(1, 2).reshape(B, T, d.Heads * d.QkDim);
        var dkv = cat([dK.narrow(-1, 0, d.Nope), dV.narrow(-1, 0, d.VDim)], -1).transpose(1, 2).reshape(B, T, d.Heads * (d.Nope + d.VDim));
        var dkRope = RotateBack(dK.narrow(-1, d.Nope, d.Rope), cos, sin, interleave).sum([1L]).to(dQ.dtype);   // (B, T, rope)
        return (dq.MoveToOuterDisposeScope(), dkv.MoveToOuterDisposeScope(), dkRope.MoveToOuterDisposeScope());
    }

    /// <summary>The kernels' arithmetic type: float32 (float64 inputs, in tests, keep float64).</summary>
    private static ScalarType MathType(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>The transpose of the rotation for a gradient g (B, h, T, d) of the rotated layout, in fp32 (c, s rounded to
    /// g's dtype as the forward rounds them): halves g1, g2 -> dx1 = g1 c + g2 s, dx2 = g2 c - g1 s, laid out as the
    /// input was (halves, or interleaved pairs).</summary>
    public static Tensor RotateBack(Tensor g, Tensor cos, Tensor sin, bool interleave)
    {
        using var scope = NewDisposeScope();
        long half = g.shape[^1] / 2;
        var math = MathType(g.dtype);
        var c = cos.to(g.dtype).to(math);
        var s = sin.to(g.dtype).to(math);
        var gf = g.to(math);
        var g1 = gf.narrow(-1, 0, half);
        var g2 = gf.narrow(-1, half, half);
        var dx1 = g1 * c + g2 * s;
        var dx2 = g2 * c - g1 * s;
        var dx = interleave ? stack([dx1, dx2], -1).flatten(-2) : cat([dx1, dx2], -1);
        return dx.MoveToOuterDisposeScope();
    }

    public Tensor MoeCombine(Tensor ys, Tensor w, Tensor pos)
    {
        using var scope = NewDisposeScope();
        long n = w.shape[0], k = w.shape[1], h = ys.shape[1];
        var math = MathType(ys.dtype);
        var picked = ys.index_select(0, pos.reshape(-1)).view(n, k, h).to(math);
        return (picked * w.to(math).unsqueeze(-1)).sum([1L]).to(ys.dtype).MoveToOuterDisposeScope();
    }

    public (Tensor Dys, Tensor Dw) MoeCombineBackward(Tensor dy, Tensor ys, Tensor w, Tensor pos)
    {
        using var scope = NewDisposeScope();
        long n = w.shape[0], k = w.shape[1], h = ys.shape[1];
        var math = MathType(ys.dtype);
        var g = dy.to(math).unsqueeze(1);                                                    // (N, 1, H)
        var rows = pos.reshape(-1);
        var dys = zeros_like(ys).index_copy_(0, rows, (g * w.to(math).unsqueeze(-1)).view(n * k, h).to(ys.dtype));
        var dw = (ys.index_select(0, rows).view(n, k, h).to(math) * g).sum([-1L]).to(w.dtype);
        return (dys.MoveToOuterDisposeScope(), dw.MoveToOuterDisposeScope());
    }

    public Tensor MoeGatherSum(Tensor dxs, Tensor pos)
    {
        using var scope = NewDisposeScope();
        long n = pos.shape[0], k = pos.shape[1], h = dxs.shape[1];
        return dxs.index_select(0, pos.reshape(-1)).view(n, k, h).to(MathType(dxs.dtype)).sum([1L]).to(dxs.dtype).MoveToOuterDisposeScope();
    }
}

public static class TrainKernels
{
    public const string SwitchEnvVar = "POSTTRAIN_TRAIN_KERNELS";

    private static readonly PerDeviceChoice<ITrainKernels> PerDevice = new("train kernels", (device, _) => Choose(device));
    private static readonly Lazy<(NativeTrainKernels? Kernels, string? Error)> Library = new(NativeTrainKernels.Load);

    /// <summary>The kernels to use for <paramref name="x"/>, or null for the plain ops.</summary>
    public static ITrainKernels? For(Tensor x) => Enabled ? PerDevice.For(x) : null;

    /// <summary>Process-wide switch (default on), for same-process comparisons; POSTTRAIN_TRAIN_KERNELS=0 turns them off
    /// for good.</summary>
    public static bool Enabled { get; set; } = true;

    /// <summary>What For decided per device so far.</summary>
    public static IReadOnlyDictionary<int, string> Status => PerDevice.Status;

    /// <summary>Uses <paramref name="kernels"/> for CPU tensors in this async flow until disposed (tests: the kernels'
    /// wiring through the model on the reference formulas).</summary>
    internal static IDisposable UseOnCpu(ITrainKernels kernels) => PerDevice.UseOnCpu(kernels);

    private static bool IsActivation(Tensor t) => t.dtype == ScalarType.Float32 || t.dtype == ScalarType.BFloat16;

    /// <summary>Whether the MLA kernels take these operands.</summary>
    public static bool MlaFits(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d)
    {
        if (q.dim() != 3 || kv.dim() != 3 || kRope.dim() != 3 || !q.is_contiguous() || !kv.is_contiguous() || kRope.stride(2) != 1
            || !IsActivation(q) || kv.dtype != q.dtype || kRope.dtype != q.dtype || d.Rope % 2 != 0 || d.VOut < d.VDim) return false;
        long B = q.shape[0], T = q.shape[1];
        return q.shape[2] == (long)d.Heads * d.QkDim && kv.shape[0] == B && kv.shape[1] == T && kv.shape[2] == (long)d.Heads * (d.Nope + d.VDim)
            && kRope.shape[0] == B && kRope.shape[1] == T && kRope.shape[2] == d.Rope
            && cos.dtype == ScalarType.Float32 && sin.dtype == ScalarType.Float32 && cos.is_contiguous() && sin.is_contiguous()
            && cos.dim() == 4 && (cos.shape[0] == B || cos.shape[0] == 1) && cos.shape[1] == 1 && cos.shape[2] == T && cos.shape[3] == d.Rope / 2
            && sin.shape.SequenceEqual(cos.shape);
    }

    /// <summary>Whether the MoE combine / gather kernels take these operands (pos a permutation of ys's rows).</summary>
    public static bool MoeFits(Tensor x, Tensor w, int k) =>
        x.dim() == 2 && x.is_contiguous() && IsActivation(x) && w.dtype == ScalarType.Float32 && k is >= 1 and <= 64;

    private static (ITrainKernels? Kernels, string Status) Choose(Device device)
    {
        if (Environment.GetEnvironmentVariable(SwitchEnvVar) == "0") return (null, $"off ({SwitchEnvVar}=0)");
        var (native, error) = Library.Value;
        if (native is null) return (null, "off: " + error);
        return PerKernelChecks.Decide<ITrainKernels>(native, SelfCheckEach(native, ReferenceTrainKernels.Instance, device), Kernels.Length,
            off => new PartialTrainKernels(native, ReferenceTrainKernels.Instance, off));
    }

    /// <summary>The kernels, by the names the self-check reports them under.</summary>
    internal static readonly string[] Kernels = ["mla qkv", "moe combine", "moe gather"];

    /// <summary>Each kernel's check on its own (float32: 1e-5 of the values' scale; bfloat16: 1e-2): the failing kernels,
    /// each with its first failing case. Shapes: bench-moe's and the 16B model's heads and MoE, both dtypes, interleaved
    /// and halves rotary, a query prescale, cos/sin per row and broadcast, a strided k_rope and strided gradients.</summary>
    public static IReadOnlyDictionary<string, string> SelfCheckEach(ITrainKernels candidate, ITrainKernels reference, Device device)
    {
        var gen = new TorchSharp.torch.Generator(8765);   // CPU draws, then moved (TorchSharp's CUDA generator is a CPU one)
        Tensor Randn(params long[] shape) => randn(shape, generator: gen).to(device);
        var dtypes = new[] { ScalarType.Float32, ScalarType.BFloat16 };
        static double Tol(ScalarType dtype) => dtype == ScalarType.BFloat16 ? 1e-2 : 1e-5;

        string? Mla()
        {
            foreach (var dtype in dtypes)
            foreach (var (d, b, t, latent, interleave, prescale, cosBatch) in new[]
            {
                (new MlaHeads(12, 64, 32, 64, 96), 2L, 5L, 256L, false, 1.0, true),
                (new MlaHeads(12, 64, 32, 64, 64), 2L, 5L, 256L, true, 1.3, false),
                (new MlaHeads(16, 128, 64, 128, 192), 1L, 3L, 512L, true, 1.0, true),
            })
            {
                var q = (Randn(b, t, d.Heads * d.QkDim) * 2).to(dtype);
                var kv = (Randn(b, t, d.Heads * (d.Nope + d.VDim)) * 2).to(dtype);
                var kRope = (Randn(b, t, latent + d.Rope) * 2).to(dtype).narrow(-1, latent, d.Rope);     // strided, as in the model
                var pos = randint(0, 4000, [cosBatch ? b : 1, t], generator: gen).to(device).to(ScalarType.Float32);
                var freqs = pos.unsqueeze(-1) * pow(10000.0, -arange(0, d.Rope, 2, dtype: ScalarType.Float32, device: device) / d.Rope);
                var cos = (freqs.cos() * 1.1).unsqueeze(1).contiguous();
                var sin = (freqs.sin() * 1.1).unsqueeze(1).contiguous();
                var what = $"mla qkv ({dtype}, {d.Heads} heads {d.Nope}+{d.Rope}, v {d.VDim}->{d.VOut}, {b}x{t}, interleave {interleave}, prescale {prescale}, cos {(cosBatch ? "per row" : "broadcast")})";
                var got = candidate.MlaQkv(q, kv, kRope, cos, sin, d, prescale, interleave);
                var want = reference.MlaQkv(q, kv, kRope, cos, sin, d, prescale, interleave);
                if (Differs(got.Q, want.Q, Tol(dtype)) is { } e1) return $"{what} Q: {e1}";
                if (Differs(got.K, want.K, Tol(dtype)) is { } e2) return $"{what} K: {e2}";
                if (Differs(got.V, want.V, Tol(dtype)) is { } e3) return $"{what} V: {e3}";
                // Gradients laid out (B, T, h, .) and seen as (B, h, T, .): strided, as SDPA may hand them back.
                var dQ = Randn(b, t, d.Heads, d.QkDim).to(dtype).transpose(1, 2);
                var dK = Randn(b, t, d.Heads, d.QkDim).to(dtype).transpose(1, 2);
                var dV = Randn(b, t, d.Heads, d.VOut).to(dtype).transpose(1, 2);
                var gb = candidate.MlaQkvBackward(dQ, dK, dV, cos, sin, d, prescale, interleave);
                var wb = reference.MlaQkvBackward(dQ, dK, dV, cos, sin, d, prescale, interleave);
                if (Differs(gb.Dq, wb.Dq, Tol(dtype)) is { } e4) return $"{what} dq: {e4}";
                if (Differs(gb.Dkv, wb.Dkv, Tol(dtype)) is { } e5) return $"{what} dkv: {e5}";
                if (Differs(gb.DkRope, wb.DkRope, Tol(dtype)) is { } e6) return $"{what} dk_rope: {e6}";
            }
            return null;
        }

        // bench-moe (top-4 of 32, hidden 768) and the 16B model (top-6 of 64, hidden 2048).
        IEnumerable<(ScalarType Dtype, long N, int K, long H, Tensor Pos, Tensor W, string What)> MoeCases()
        {
            foreach (var dtype in dtypes)
            foreach (var (n, k, h) in new[] { (37L, 4, 768L), (29L, 6, 2048L) })
            {
                var pos = randperm(n * k, generator: gen).to(device).view(n, k);
                var w = rand(n, k, generator: gen).to(device) * 2.5;
                yield return (dtype, n, k, h, pos, w, $"({dtype}, {n} tokens top-{k}, hidden {h})");
            }
        }

        string? Combine()
        {
            foreach (var (dtype, n, k, h, pos, w, what) in MoeCases())
            {
                var ys = (Randn(n * k, h) * 2).to(dtype);
                var dy = Randn(n, h).to(dtype);
                if (Differs(candidate.MoeCombine(ys, w, pos), reference.MoeCombine(ys, w, pos), Tol(dtype)) is { } e1) return $"moe combine {what}: {e1}";
                var (dys1, dw1) = candidate.MoeCombineBackward(dy, ys, w, pos);
                var (dys0, dw0) = reference.MoeCombineBackward(dy, ys, w, pos);
                if (Differs(dys1, dys0, Tol(dtype)) is { } e2) return $"moe combine {what} dys: {e2}";
                if (Differs(dw1, dw0, Tol(dtype)) is { } e3) return $"moe combine {what} dw: {e3}";
            }
            return null;
        }

        string? Gather()
        {
            foreach (var (dtype, n, k, h, pos, _, what) in MoeCases())
            {
                var dxs = Randn(n * k, h).to(dtype);
                if (Differs(candidate.MoeGatherSum(dxs, pos), reference.MoeGatherSum(dxs, pos), Tol(dtype)) is { } e) return $"moe gather {what}: {e}";
            }
            return null;
        }

        return PerKernelChecks.RunEach(Kernels, [Mla, Combine, Gather]);
    }

    private static string? Differs(Tensor got, Tensor want, double tol) => PerKernelChecks.Differs(got, want, tol);
}

/// <summary>The native training kernels through P/Invoke.</summary>
internal sealed class NativeTrainKernels : ITrainKernels
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int MlaForwardFn(IntPtr q, IntPtr kv, IntPtr kr, IntPtr cos, IntPtr sin, int heads, int nope, int rope, int vdim, double prescale, int interleave, IntPtr Q, IntPtr K, IntPtr V);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int MlaBackwardFn(IntPtr dQ, IntPtr dK, IntPtr dV, IntPtr cos, IntPtr sin, int nope, int vdim, double prescale, int interleave, IntPtr dq, IntPtr dkv, IntPtr dkr);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int CombineFn(IntPtr ys, IntPtr w, IntPtr pos, IntPtr y);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int CombineBackwardFn(IntPtr dy, IntPtr ys, IntPtr w, IntPtr pos, IntPtr dys, IntPtr dw);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GatherFn(IntPtr dxs, IntPtr pos, IntPtr dx);

    private MlaForwardFn mlaForward = null!;
    private MlaBackwardFn mlaBackward = null!;
    private CombineFn combine = null!;
    private CombineBackwardFn combineBackward = null!;
    private GatherFn gather = null!;

    public static (NativeTrainKernels?, string?) Load()
    {
        var (lib, path, error) = NativeKernelLibrary.Value;
        if (error is not null) return (null, error);
        T Fn<T>(string name) where T : Delegate => NativeKernelLibrary.Function<T>(lib, name);
        try
        {
            return (new NativeTrainKernels
            {
                mlaForward = Fn<MlaForwardFn>("ptk_mla_qkv_forward"),
                mlaBackward = Fn<MlaBackwardFn>("ptk_mla_qkv_backward"),
                combine = Fn<CombineFn>("ptk_moe_combine"),
                combineBackward = Fn<CombineBackwardFn>("ptk_moe_combine_backward"),
                gather = Fn<GatherFn>("ptk_moe_gather_sum"),
            }, null);
        }
        catch (EntryPointNotFoundException e)
        {
            return (null, $"{path}: {e.Message} (a library built before the training kernels: rebuild it with scripts/gpu/build-kernels.sh)");
        }
    }

    private static void Check(int rc, string what) => NativeKernelLibrary.Check(rc, $"train kernel {what}");

    public (Tensor Q, Tensor K, Tensor V) MlaQkv(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave)
    {
        long B = q.shape[0], T = q.shape[1];
        var Q = empty(B, d.Heads, T, d.QkDim, dtype: q.dtype, device: q.device);
        var K = empty(B, d.Heads, T, d.QkDim, dtype: q.dtype, device: q.device);
        var V = empty(B, d.Heads, T, d.VOut, dtype: q.dtype, device: q.device);
        Check(mlaForward(q.Handle, kv.Handle, kRope.Handle, cos.Handle, sin.Handle, d.Heads, d.Nope, d.Rope, d.VDim, prescale, interleave ? 1 : 0,
            Q.Handle, K.Handle, V.Handle), "mla_qkv_forward");
        return (Q, K, V);
    }

    public (Tensor Dq, Tensor Dkv, Tensor DkRope) MlaQkvBackward(Tensor dQ, Tensor dK, Tensor dV, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave)
    {
        long B = dQ.shape[0], T = dQ.shape[2];
        var dq = empty(B, T, (long)d.Heads * d.QkDim, dtype: dQ.dtype, device: dQ.device);
        var dkv = empty(B, T, (long)d.Heads * (d.Nope + d.VDim), dtype: dQ.dtype, device: dQ.device);
        var dkr = empty(B, T, d.Rope, dtype: dQ.dtype, device: dQ.device);
        Check(mlaBackward(dQ.Handle, dK.Handle, dV.Handle, cos.Handle, sin.Handle, d.Nope, d.VDim, prescale, interleave ? 1 : 0,
            dq.Handle, dkv.Handle, dkr.Handle), "mla_qkv_backward");
        return (dq, dkv, dkr);
    }

    public Tensor MoeCombine(Tensor ys, Tensor w, Tensor pos)
    {
        var y = empty(w.shape[0], ys.shape[1], dtype: ys.dtype, device: ys.device);
        Check(combine(ys.Handle, w.Handle, pos.Handle, y.Handle), "moe_combine");
        return y;
    }

    public (Tensor Dys, Tensor Dw) MoeCombineBackward(Tensor dy, Tensor ys, Tensor w, Tensor pos)
    {
        var dys = empty_like(ys);
        var dw = empty_like(w);
        Check(combineBackward(dy.Handle, ys.Handle, w.Handle, pos.Handle, dys.Handle, dw.Handle), "moe_combine_backward");
        return (dys, dw);
    }

    public Tensor MoeGatherSum(Tensor dxs, Tensor pos)
    {
        var dx = empty(pos.shape[0], dxs.shape[1], dtype: dxs.dtype, device: dxs.device);
        Check(gather(dxs.Handle, pos.Handle, dx.Handle), "moe_gather_sum");
        return dx;
    }
}

/// <summary>The native kernels that passed their self-check, the plain ops for the ones that did not.</summary>
internal sealed class PartialTrainKernels(ITrainKernels native, ITrainKernels plain, IReadOnlySet<string> off) : ITrainKernels
{
    private ITrainKernels Pick(string kernel) => off.Contains(kernel) ? plain : native;

    public (Tensor Q, Tensor K, Tensor V) MlaQkv(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave) =>
        Pick("mla qkv").MlaQkv(q, kv, kRope, cos, sin, d, prescale, interleave);

    public (Tensor Dq, Tensor Dkv, Tensor DkRope) MlaQkvBackward(Tensor dQ, Tensor dK, Tensor dV, Tensor cos, Tensor sin, MlaHeads d, double prescale, bool interleave) =>
        Pick("mla qkv").MlaQkvBackward(dQ, dK, dV, cos, sin, d, prescale, interleave);

    public Tensor MoeCombine(Tensor ys, Tensor w, Tensor pos) => Pick("moe combine").MoeCombine(ys, w, pos);

    public (Tensor Dys, Tensor Dw) MoeCombineBackward(Tensor dy, Tensor ys, Tensor w, Tensor pos) => Pick("moe combine").MoeCombineBackward(dy, ys, w, pos);

    public Tensor MoeGatherSum(Tensor dxs, Tensor pos) => Pick("moe gather").MoeGatherSum(dxs, pos);
}

/// <summary>The model's use of the training kernels: MLA's operands and the MoE dispatch/combine, each through a custom
/// autograd function when a gradient is needed.</summary>
public static class TrainOps
{
    /// <summary>MLA's attention operands Q, K, V (B, h, T, .) through <paramref name="kernels"/>.</summary>
    public static (Tensor Q, Tensor K, Tensor V) MlaQkv(Tensor q, Tensor kv, Tensor kRope, Tensor cos, Tensor sin, MlaHeads d, double prescale,
        bool interleave, ITrainKernels kernels)
    {
        if (!is_grad_enabled() || (!q.requires_grad && !kv.requires_grad && !kRope.requires_grad))
            return kernels.MlaQkv(q, kv, kRope, cos, sin, d, prescale, interleave);
        var o = MlaQkvFunction.apply(q, kv, kRope, cos, sin, d, prescale, interleave, kernels);
        return (o[0], o[1], o[2]);
    }

    /// <summary>pos (N, k): the row of each token's j-th choice in the expert order, from the sort's
    /// <paramref name="order"/> (N k) of the token-major flat choices.</summary>
    public static Tensor InverseOrder(Tensor order, long tokens, int k) =>
        empty_like(order).scatter_(0, order, arange(order.numel(), dtype: order.dtype, device: order.device)).view(tokens, k);

    /// <summary>x (N, H) gathered into expert order (rows tokenOf), with the backward as a per-token sum over pos.</summary>
    public static Tensor Dispatch(Tensor x, Tensor tokenOf, Tensor pos, ITrainKernels kernels) =>
        !is_grad_enabled() || !x.requires_grad ? x.index_select(0, tokenOf) : MoeDispatchFunction.apply(x, tokenOf, pos, kernels);

    /// <summary>y[n] = sum_j w[n, j] ys[pos[n, j]] (N, H) in ys's dtype.</summary>
    public static Tensor Combine(Tensor ys, Tensor w, Tensor pos, ITrainKernels kernels) =>
        !is_grad_enabled() || (!ys.requires_grad && !w.requires_grad)
            ? kernels.MoeCombine(ys.contiguous(), w.contiguous(), pos)
            : MoeCombineFunction.apply(ys.contiguous(), w.contiguous(), pos, kernels);
}

internal sealed class MlaQkvFunction : MultiTensorFunction<MlaQkvFunction>
{
    public override string Name => "FusedMlaQkv";

    // vars: q, kv, kRope, cos, sin, MlaHeads, prescale (double), interleave (bool), ITrainKernels
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var kernels = (ITrainKernels)vars[8];
        var cos = ((Tensor)vars[3]).detach();
        var sin = ((Tensor)vars[4]).detach();
        using var noGrad = no_grad();
        var (q, k, v) = kernels.MlaQkv(((Tensor)vars[0]).detach(), ((Tensor)vars[1]).detach(), ((Tensor)vars[2]).detach(), cos, sin,
            (MlaHeads)vars[5], (double)vars[6], (bool)vars[7]);
        ctx.save_for_backward([cos, sin]);
        ctx.save_data("heads", vars[5]);
        ctx.save_data("prescale", vars[6]);
        ctx.save_data("interleave", vars[7]);
        ctx.save_data("kernels", kernels);
        return [q, k, v];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grads)
    {
        AutogradReturns.ReleasePrevious();
        var saved = ctx.get_saved_variables();
        var kernels = (ITrainKernels)ctx.get_data("kernels");
        Tensor dq, dkv, dkr;
        using (var scope = NewDisposeScope())
        {
            // Q, K and V all feed SDPA, so each has a gradient; the kernel reads any layout with a unit last stride.
            static Tensor Unit(Tensor g) => g.stride(-1) == 1 ? g : g.contiguous();
            (dq, dkv, dkr) = kernels.MlaQkvBackward(Unit(grads[0]), Unit(grads[1]), Unit(grads[2]), saved[0], saved[1],
                (MlaHeads)ctx.get_data("heads"), (double)ctx.get_data("prescale"), (bool)ctx.get_data("interleave"));
            scope.Detach(dq, dkv, dkr);
        }
        return AutogradReturns.Return(grads, [dq, dkv, dkr, null, null, null, null, null, null]);
    }
}

internal sealed class MoeDispatchFunction : SingleTensorFunction<MoeDispatchFunction>
{
    public override string Name => "MoeDispatch";

    // vars: x (N, H), tokenOf (N k) int64, pos (N, k) int64, ITrainKernels
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var pos = ((Tensor)vars[2]).detach();
        using var noGrad = no_grad();
        var xs = ((Tensor)vars[0]).detach().index_select(0, (Tensor)vars[1]);
        ctx.save_for_backward([pos]);
        ctx.save_data("kernels", vars[3]);
        return xs;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        var pos = ctx.get_saved_variables()[0];
        var kernels = (ITrainKernels)ctx.get_data("kernels");
        Tensor dx;
        using (var scope = NewDisposeScope())
        {
            dx = kernels.MoeGatherSum(grad_output.contiguous(), pos);
            scope.Detach(dx);
        }
        return AutogradReturns.Return([grad_output], [dx, null, null, null]);
    }
}

internal sealed class MoeCombineFunction : SingleTensorFunction<MoeCombineFunction>
{
    public override string Name => "MoeCombine";

    // vars: ys (R, H) contiguous, w (N, k) float32 contiguous, pos (N, k) int64, ITrainKernels
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var ys = ((Tensor)vars[0]).detach();
        var w = ((Tensor)vars[1]).detach();
        var pos = ((Tensor)vars[2]).detach();
        var kernels = (ITrainKernels)vars[3];
        using var noGrad = no_grad();
        var y = kernels.MoeCombine(ys, w, pos);
        ctx.save_for_backward([ys, w, pos]);
        ctx.save_data("kernels", kernels);
        return y;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        AutogradReturns.ReleasePrevious();
        var saved = ctx.get_saved_variables();
        var kernels = (ITrainKernels)ctx.get_data("kernels");
        Tensor dys, dw;
        using (var scope = NewDisposeScope())
        {
            (dys, dw) = kernels.MoeCombineBackward(grad_output.contiguous(), saved[0], saved[1], saved[2]);
            scope.Detach(dys, dw);
        }
        return AutogradReturns.Return([grad_output], [dys, dw, null, null]);
    }
}
