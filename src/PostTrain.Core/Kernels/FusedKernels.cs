// Which fused-kernel backend the model's RMSNorm and SwiGLU use on a tensor: the native CUDA kernels
// (native/kernels/posttrain_kernels.cu, libposttrain_kernels.so, built on the GPU machine by scripts/gpu/build-kernels.sh;
// looked up in POSTTRAIN_KERNELS_LIB, then next to PostTrain's binaries) when the tensor is on CUDA, the library loads
// and its self-check on that device passed; otherwise none (null: the model's plain ops run).
// Self-check (once per device, on the first use, which is an eager step: decoding and the fast training step run
// eagerly before any CUDA-graph capture): forward and backward of both ops against ReferenceFusedKernels on random
// inputs, float32 and bfloat16 activations with float32 and bfloat16 weights, row widths 512 and 768 and one that is not
// a multiple of the block size; the softmax cross-entropy on vocabularies of 1,000 and 9,001 (both block sizes), an
// ignored row and the last label, out of place and in place. A failure prints why once and keeps the plain ops. POSTTRAIN_FUSED_KERNELS=0 turns the
// kernels off.
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace PostTrain.Core.Kernels;

public static class FusedKernels
{
    public const string LibraryEnvVar = NativeKernelLibrary.LibraryEnvVar;
    public const string SwitchEnvVar = "POSTTRAIN_FUSED_KERNELS";
    public const string LibraryFileName = NativeKernelLibrary.LibraryFileName;

    private static readonly PerDeviceChoice<IFusedKernels> PerDevice = new("fused kernels", (device, _) => Choose(device));
    private static readonly Lazy<(NativeFusedKernels? Kernels, string? Error)> Library = new(NativeFusedKernels.Load);

    /// <summary>The kernels to use for <paramref name="x"/>, or null for the plain ops.</summary>
    public static IFusedKernels? For(Tensor x) => PerDevice.For(x);

    /// <summary>What For decided per device so far ("on (self-check passed)" or "off: why").</summary>
    public static IReadOnlyDictionary<int, string> Status => PerDevice.Status;

    private static (IFusedKernels? Kernels, string Status) Choose(Device device)
    {
        if (Environment.GetEnvironmentVariable(SwitchEnvVar) == "0") return (null, $"off ({SwitchEnvVar}=0)");
        var (native, error) = Library.Value;
        if (native is null) return (null, "off: " + error);
        var failure = SelfCheck(native, ReferenceFusedKernels.Instance, device);
        return failure is null ? (native, "on (self-check against the plain formulas passed)") : (null, "off: self-check failed: " + failure);
    }

    /// <summary>Compares <paramref name="candidate"/> with <paramref name="reference"/> on random inputs; null when they
    /// agree within rounding (float32: rtol 1e-4; bfloat16: rtol/atol 2e-2 of the values' scale), else what differed.</summary>
    public static string? SelfCheck(IFusedKernels candidate, IFusedKernels reference, Device device)
    {
        try
        {
            using var scope = NewDisposeScope();
            // Drawn on the CPU, then moved: TorchSharp 0.107 builds a CPU generator even when given a CUDA device, and randn on
            // CUDA then refuses it (the first GPU run disabled every native kernel this way).
            var gen = new TorchSharp.torch.Generator(1234);
            foreach (var act in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            foreach (var wt in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            foreach (var dim in new[] { 512, 768, 1000 })
            {
                var x = randn(37, dim, generator: gen).to(device).mul_(3).to(act);
                var w = (rand(dim, generator: gen).to(device) + 0.5).to(wt);
                var dy = randn(37, dim, generator: gen).to(device).to(act);
                var (y1, r1) = candidate.RmsNormForward(x, w, 1e-6);
                var (y0, r0) = reference.RmsNormForward(x, w, 1e-6);
                var (dx1, dw1) = candidate.RmsNormBackward(dy, x, w, r0);
                var (dx0, dw0) = reference.RmsNormBackward(dy, x, w, r0);
                var what = $"{act} activations, {wt} weight, width {dim}";
                if (Differs(y1, y0, act) is { } e1) return $"RMSNorm forward y ({what}): {e1}";
                if (Differs(r1, r0, ScalarType.Float32) is { } e2) return $"RMSNorm forward rstd ({what}): {e2}";
                if (Differs(dx1, dx0, act) is { } e3) return $"RMSNorm backward dx ({what}): {e3}";
                if (Differs(dw1, dw0, ScalarType.Float32) is { } e4) return $"RMSNorm backward dw ({what}): {e4}";
                if (wt != act) continue;
                var a = randn(37, dim, generator: gen).to(device).mul_(2).to(act);
                var b = randn(37, dim, generator: gen).to(device).to(act);
                if (Differs(candidate.SwiGluForward(a, b), reference.SwiGluForward(a, b), act) is { } e5) return $"SwiGLU forward ({what}): {e5}";
                var (da1, db1) = candidate.SwiGluBackward(dy, a, b);
                var (da0, db0) = reference.SwiGluBackward(dy, a, b);
                if (Differs(da1, da0, act) is { } e6) return $"SwiGLU backward da ({what}): {e6}";
                if (Differs(db1, db0, act) is { } e7) return $"SwiGLU backward db ({what}): {e7}";
            }
            foreach (var act in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            foreach (var vocab in new[] { 1000, 9001 })
            {
                var z = (randn(13, vocab, generator: gen).to(device) * 4).to(act);
                var labels = randint(0, vocab, [13], generator: gen).to(device);
                labels[2] = tensor(PostTrain.Core.Model.Losses.Ignore);
                labels[5] = tensor((long)vocab - 1);
                var what = $"{act} logits, vocab {vocab}";
                var (d1, l1) = candidate.SoftmaxCrossEntropy(z, labels, overwriteLogits: false);
                var (d0, l0) = reference.SoftmaxCrossEntropy(z, labels, overwriteLogits: false);
                if (Differs(d1, d0, act) is { } e8) return $"softmax cross-entropy dlogits ({what}): {e8}";
                if (Differs(l1, l0, ScalarType.Float32) is { } e9) return $"softmax cross-entropy loss ({what}): {e9}";
                var zc = z.clone();
                var (d2, _) = candidate.SoftmaxCrossEntropy(zc, labels, overwriteLogits: true);
                if (Differs(zc, d0, act) is { } e10) return $"softmax cross-entropy in place ({what}): {e10}";
                if (Distributed.TensorPointer.Of(d2) != Distributed.TensorPointer.Of(zc)) return $"softmax cross-entropy in place ({what}): dlogits not written over the logits";
            }
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or ExternalException or ArgumentException)
        {
            return e.Message.Split('\n')[0];
        }
    }

    private static string? Differs(Tensor got, Tensor want, ScalarType dtype) =>
        Differs(got, want, dtype == ScalarType.BFloat16 ? 2e-2 : 1e-4);

    /// <summary>Null when <paramref name="got"/> has <paramref name="want"/>'s shape, is finite and differs from it by at
    /// most <paramref name="tol"/> of want's largest magnitude; else what differed. Shared by the kernel self-checks.</summary>
    internal static string? Differs(Tensor got, Tensor want, double tol)
    {
        using var scope = NewDisposeScope();
        if (!got.shape.SequenceEqual(want.shape)) return $"shape [{string.Join(", ", got.shape)}] vs [{string.Join(", ", want.shape)}]";
        var g = got.to(ScalarType.Float32);
        var w = want.to(ScalarType.Float32);
        double scale = w.abs().max().item<float>() + 1e-12;
        double worst = (g - w).abs().max().item<float>() / scale;
        return worst <= tol && g.isfinite().all().item<bool>() ? null : $"largest difference {worst:G3} of the values' scale (allowed {tol:G3})";
    }
}

/// <summary>The native kernels through P/Invoke (TorchSharp tensor handles are at::Tensor pointers).</summary>
internal sealed class NativeFusedKernels : IFusedKernels
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int NormForwardFn(IntPtr x, IntPtr w, double eps, IntPtr y, IntPtr rstd);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int NormBlocksFn(long rows);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int NormBackwardFn(IntPtr dy, IntPtr x, IntPtr w, IntPtr rstd, IntPtr dx, IntPtr partial);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GluForwardFn(IntPtr a, IntPtr b, IntPtr h);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GluBackwardFn(IntPtr dh, IntPtr a, IntPtr b, IntPtr da, IntPtr db);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int XentFn(IntPtr z, IntPtr labels, long ignore, IntPtr dz, IntPtr loss);

    private NormForwardFn normForward = null!;
    private NormBlocksFn normBlocks = null!;
    private NormBackwardFn normBackward = null!;
    private GluForwardFn gluForward = null!;
    private GluBackwardFn gluBackward = null!;
    private XentFn xent = null!;

    public static (NativeFusedKernels?, string?) Load()
    {
        var (lib, path, error) = NativeKernelLibrary.Value;
        if (error is not null) return (null, error);
        T Fn<T>(string name) where T : Delegate => NativeKernelLibrary.Function<T>(lib, name);
        try
        {
            return (new NativeFusedKernels
            {
                normForward = Fn<NormForwardFn>("ptk_rmsnorm_forward"),
                normBlocks = Fn<NormBlocksFn>("ptk_rmsnorm_backward_blocks"),
                normBackward = Fn<NormBackwardFn>("ptk_rmsnorm_backward"),
                gluForward = Fn<GluForwardFn>("ptk_swiglu_forward"),
                gluBackward = Fn<GluBackwardFn>("ptk_swiglu_backward"),
                xent = Fn<XentFn>("ptk_softmax_xent"),
            }, null);
        }
        catch (EntryPointNotFoundException e)
        {
            return (null, $"{path}: {e.Message}");
        }
    }

    private static void Check(int rc, string what) => NativeKernelLibrary.Check(rc, $"fused kernel {what}");

    public (Tensor Y, Tensor Rstd) RmsNormForward(Tensor x, Tensor w, double eps)
    {
        var y = empty_like(x);
        var rstd = empty(x.shape[0], dtype: ScalarType.Float32, device: x.device);
        Check(normForward(x.Handle, w.Handle, eps, y.Handle, rstd.Handle), "rmsnorm_forward");
        return (y, rstd);
    }

    public (Tensor Dx, Tensor Dw) RmsNormBackward(Tensor dy, Tensor x, Tensor w, Tensor rstd)
    {
        using var scope = NewDisposeScope();
        var dx = empty_like(x);
        var partial = empty(normBlocks(x.shape[0]), x.shape[1], dtype: ScalarType.Float32, device: x.device);
        Check(normBackward(dy.Handle, x.Handle, w.Handle, rstd.Handle, dx.Handle, partial.Handle), "rmsnorm_backward");
        var dw = partial.sum([0L]);                                                   // (D) fp32
        return (dx.MoveToOuterDisposeScope(), dw.MoveToOuterDisposeScope());
    }

    public Tensor SwiGluForward(Tensor a, Tensor b)
    {
        var h = empty_like(a);
        Check(gluForward(a.Handle, b.Handle, h.Handle), "swiglu_forward");
        return h;
    }

    public (Tensor Da, Tensor Db) SwiGluBackward(Tensor dh, Tensor a, Tensor b)
    {
        var da = empty_like(a);
        var db = empty_like(b);
        Check(gluBackward(dh.Handle, a.Handle, b.Handle, da.Handle, db.Handle), "swiglu_backward");
        return (da, db);
    }

    public (Tensor Dlogits, Tensor Loss) SoftmaxCrossEntropy(Tensor logits, Tensor labels, bool overwriteLogits)
    {
        var d = overwriteLogits ? logits : empty_like(logits);
        var loss = empty(logits.shape[0], dtype: ScalarType.Float32, device: logits.device);
        Check(xent(logits.Handle, labels.Handle, PostTrain.Core.Model.Losses.Ignore, d.Handle, loss.Handle), "softmax_xent");
        return (d, loss);
    }
}
