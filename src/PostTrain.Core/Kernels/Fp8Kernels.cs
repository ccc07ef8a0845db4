// Which FP8 kernel backend the MoE experts use on a tensor (Fp8.GroupedLinear): the native quantisation kernels and
// Triton grouped GEMMs (NativeFp8Kernels) when the tensor is on CUDA, the library and its cubins load and the
// self-check on that device passed; otherwise null, and the experts keep the per-expert _scaled_mm loop
// (Fp8GroupedFunction). Self-check (once per device, at first use, which is an eager step): every kernel against
// ReferenceFp8Kernels on the same device and inputs: quantisers bit for bit (float32 and bfloat16 inputs, widths that
// are and are not multiples of 128 or of 8, an all-zero tile, a NaN), both grouped GEMMs on identical FP8 operands (N != K, an expert with no rows,
// padding blocks) within the FP8 tensor cores' accumulation error. A failure prints why once and keeps the loop.
// POSTTRAIN_FP8_KERNELS=0 turns the kernels off. The grouped GEMMs run on the TMA + wgmma kernels (native/kernels/sm90a,
// Hopper only) in their persistent variant (one CTA per SM walking the tiles) by default, when their library loads on
// that device and they pass the same self-check; otherwise on the Triton cubins, and the status line says why.
// POSTTRAIN_FP8_WGMMA=0 keeps the Triton GEMMs, =1 asks for the one-CTA-per-tile wgmma kernels, =persistent (the
// default) for the persistent ones. The default became wgmma on 2026-12-05, after their first GPU run (H100): checked
// against the reference and faster than the Triton GEMMs at bench-moe-large in every row (README, FP8 training).
using System.Runtime.InteropServices;
using PostTrain.Core.Precision;
using static TorchSharp.torch;

namespace PostTrain.Core.Kernels;

public static class Fp8Kernels
{
    public const string SwitchEnvVar = "POSTTRAIN_FP8_KERNELS";
    public const string WgmmaEnvVar = "POSTTRAIN_FP8_WGMMA";

    // The FP8 tensor cores accumulate with limited precision (Fp8SelfCheck measured ~8e-4 relative for _scaled_mm);
    // the m-grouped GEMM also rounds its output to bfloat16.
    private const double KGroupedBound = 2e-3, MGroupedBound = 1e-2;

    private static readonly PerDeviceChoice<IFp8Kernels> PerDevice = new("fp8 kernels", Choose);
    private static readonly Lazy<(NativeFp8Kernels? Kernels, string? Error)> Library = new(NativeFp8Kernels.Load);

    /// <summary>The kernels for <paramref name="x"/>'s device, or null for the per-expert loop.</summary>
    public static IFp8Kernels? For(Tensor x) => PerDevice.For(x);

    /// <summary>The kernels for <paramref name="device"/> (For on a probe tensor there), or null.</summary>
    public static IFp8Kernels? ForDevice(Device device)
    {
        if (device.type != TorchSharp.DeviceType.CUDA) return null;
        using var probe = empty(1, device: device);
        return For(probe);
    }

    /// <summary>What For decided per device so far.</summary>
    public static IReadOnlyDictionary<int, string> Status => PerDevice.Status;

    /// <summary>The native kernels loaded on <paramref name="device"/> without the self-check (for the benchmark and
    /// Fp8SelfCheck, which compare them themselves), with the grouped GEMMs as POSTTRAIN_FP8_WGMMA asks, or the reason
    /// they are unavailable.</summary>
    public static (IFp8Kernels? Kernels, string? Error) Native(Device device)
    {
        int index = device.index < 0 ? 0 : device.index;
        var (native, error, gemms) = LoadNative(index);
        if (native is not null) NativeGemms[index] = gemms;
        return (native, error);
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, string> NativeGemms = new();

    /// <summary>Which grouped GEMMs Native gave <paramref name="device"/> last ("Triton grouped GEMMs", "TMA + wgmma
    /// grouped GEMMs", or Triton with the reason wgmma is off), or null before Native ran there.</summary>
    public static string? NativeGroupedGemms(Device device) =>
        NativeGemms.TryGetValue(device.index < 0 ? 0 : device.index, out var g) ? g : null;

    // The library loaded on cuda:index, and which grouped GEMMs it runs there (and why not wgmma, if asked for).
    private static (NativeFp8Kernels? Kernels, string? Error, string Gemms) LoadNative(int index)
    {
        var (native, error) = Library.Value;
        if (native is null) return (null, error, "");
        try
        {
            native.LoadOn(index);
        }
        catch (InvalidOperationException e)
        {
            return (null, e.Message.Split('\n')[0], "");
        }
        var asked = Environment.GetEnvironmentVariable(WgmmaEnvVar);
        var mode = string.IsNullOrEmpty(asked) ? "persistent" : asked;
        if (mode is not ("1" or "persistent"))
        {
            if (native.UsesWgmma(index)) native.UseWgmma(index, false);   // asked for earlier in this process, not now
            return (native, null, mode == "0" ? $"Triton grouped GEMMs ({WgmmaEnvVar}=0)"
                : $"Triton grouped GEMMs ({WgmmaEnvVar}={mode} is none of 0, 1, persistent)");
        }
        try
        {
            native.UseWgmma(index, true, persistent: mode == "persistent");
            return (native, null, mode == "persistent" ? "TMA + wgmma grouped GEMMs, persistent" : "TMA + wgmma grouped GEMMs");
        }
        catch (InvalidOperationException e)
        {
            return (native, null, $"Triton grouped GEMMs; wgmma off: {e.Message.Split('\n')[0]}");
        }
    }

    private static (IFp8Kernels? Kernels, string Status) Choose(Device device, int index)
    {
        if (Environment.GetEnvironmentVariable(SwitchEnvVar) == "0") return (null, $"off ({SwitchEnvVar}=0)");
        var (native, error, gemms) = LoadNative(index);
        if (native is null) return (null, "off: " + error);
        var failure = SelfCheck(native, ReferenceFp8Kernels.Instance, device);
        if (failure is not null && native.UsesWgmma(index))
        {
            native.UseWgmma(index, false);
            gemms = $"Triton grouped GEMMs; wgmma off: self-check failed: {failure}";
            failure = SelfCheck(native, ReferenceFp8Kernels.Instance, device);
        }
        return failure is null
            ? (native, $"on ({gemms}; quantisers bit-exact, grouped GEMMs within the FP8 accumulation bound of the reference)")
            : (null, "off: self-check failed: " + failure);
    }

    /// <summary>Compares <paramref name="candidate"/> with <paramref name="reference"/> on random inputs on
    /// <paramref name="device"/>; null when they agree, else what differed.</summary>
    public static string? SelfCheck(IFp8Kernels candidate, IFp8Kernels reference, Device device)
    {
        try
        {
            using var scope = NewDisposeScope();
            // Drawn on the CPU, then moved: TorchSharp 0.107 builds a CPU generator even when given a CUDA device, and randn on
            // CUDA then refuses it (the first GPU run disabled every native kernel this way).
            var gen = new TorchSharp.torch.Generator(4321);
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            foreach (var (rows, cols) in new[] { (256L, 384L), (384L, 1000L), (128L, 203L) })   // 203: no vector loads
            {
                var x = (randn(rows, cols, generator: gen).to(device) * 3).to(dtype);
                x[.., 5] *= 40;                                                               // an outlier channel
                x[1] *= 0;                                                                    // an all-zero row: scale 1
                x[2, 7] = tensor(float.NaN).to(dtype);                                        // a NaN tile: scale 1, NaN kept
                string what = $"{dtype} ({rows}, {cols})";
                if (Mismatch(candidate.QuantRows(x), reference.QuantRows(x)) is { } e1) return $"QuantRows {what}: {e1}";
                if (Mismatch(candidate.QuantColumns(x), reference.QuantColumns(x)) is { } e2) return $"QuantColumns {what}: {e2}";
                var (xq, xs) = reference.QuantRows(x);
                if (Mismatch(candidate.RequantColumns(xq, xs), reference.RequantColumns(xq, xs)) is { } e2b) return $"RequantColumns {what}: {e2b}";
                var w = (randn(3, rows - 8, cols, generator: gen).to(device) * 0.05).to(dtype);
                w[1, 3, 5] = tensor(float.NaN).to(dtype);
                if (Mismatch(candidate.QuantBlocks(w), reference.QuantBlocks(w)) is { } e3) return $"QuantBlocks {what}: {e3}";
                var (cq, cs, cqt, cst) = candidate.QuantBlocksBoth(w);
                var (rq, rs, rqt, rst) = reference.QuantBlocksBoth(w);
                if ((Mismatch((cq, cs), (rq, rs)) ?? Mismatch((cqt, cst), (rqt, rst))) is { } e3b) return $"QuantBlocksBoth {what}: {e3b}";
            }

            // m-grouped: 6 row blocks over 4 experts (expert 2 has none, two padding blocks), N = 256 != K = 384.
            var (qa, sa) = reference.QuantRows(randn(768, 384, generator: gen).to(device));
            var (qb, sb) = reference.QuantBlocks(randn(4, 256, 384, generator: gen).to(device) * 0.05);
            var blockExpert = tensor(new[] { 1, 1, -1, 3, 0, -1 }, device: device);
            if (Differs(candidate.GemmMGrouped(qa, sa, qb, sb, blockExpert), reference.GemmMGrouped(qa, sa, qb, sb, blockExpert), MGroupedBound) is { } e4)
                return $"GemmMGrouped: {e4}";

            // k-grouped: 768 token columns in segments [0, 256, 256, 640, 768] (expert 1 empty), NA = 256, NB = 384.
            var (qx, sx) = reference.QuantRows(randn(256, 768, generator: gen).to(device));
            var (qy, sy) = reference.QuantRows(randn(384, 768, generator: gen).to(device) * 0.1);
            var segments = tensor(new[] { 0, 256, 256, 640, 768 }, device: device);
            if (Differs(candidate.GemmKGrouped(qx, sx, qy, sy, segments), reference.GemmKGrouped(qx, sx, qy, sy, segments), KGroupedBound) is { } e5)
                return $"GemmKGrouped: {e5}";
            // the same into bfloat16 (the weight gradient of bf16 weights): one rounding of the float32 result
            var c16 = candidate.GemmKGrouped(qx, sx, qy, sy, segments, ScalarType.BFloat16);
            if (c16.dtype != ScalarType.BFloat16) return $"GemmKGrouped (bfloat16 output): got {c16.dtype}";
            if (Differs(c16, reference.GemmKGrouped(qx, sx, qy, sy, segments), MGroupedBound) is { } e5b)
                return $"GemmKGrouped (bfloat16 output): {e5b}";

            // Deeper contractions than a kernel's shared-memory ring holds (the wgmma kernels keep 5 slices of 128):
            // m-grouped K = 1280 over 3 row blocks; k-grouped segments of 1280 and 128 token columns (and an empty one).
            var (qa2, sa2) = reference.QuantRows(randn(384, 1280, generator: gen).to(device));
            var (qb2, sb2) = reference.QuantBlocks(randn(2, 128, 1280, generator: gen).to(device) * 0.05);
            var blockExpert2 = tensor(new[] { 1, 0, 1 }, device: device);
            if (Differs(candidate.GemmMGrouped(qa2, sa2, qb2, sb2, blockExpert2), reference.GemmMGrouped(qa2, sa2, qb2, sb2, blockExpert2), MGroupedBound) is { } e6)
                return $"GemmMGrouped (K = 1280): {e6}";
            var (qx2, sx2) = reference.QuantRows(randn(128, 1408, generator: gen).to(device));
            var (qy2, sy2) = reference.QuantRows(randn(256, 1408, generator: gen).to(device) * 0.1);
            var segments2 = tensor(new[] { 0, 1280, 1280, 1408 }, device: device);
            if (Differs(candidate.GemmKGrouped(qx2, sx2, qy2, sy2, segments2), reference.GemmKGrouped(qx2, sx2, qy2, sy2, segments2), KGroupedBound) is { } e7)
                return $"GemmKGrouped (a 1280-token segment): {e7}";
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or ExternalException or ArgumentException)
        {
            return e.Message.Split('\n')[0];
        }
    }

    private static string? Mismatch((Tensor Q, Tensor Scale) got, (Tensor Q, Tensor Scale) want)
    {
        using var scope = NewDisposeScope();
        if (!got.Q.shape.SequenceEqual(want.Q.shape) || !got.Scale.shape.SequenceEqual(want.Scale.shape))
            return $"shapes [{string.Join(", ", got.Q.shape)}] / [{string.Join(", ", got.Scale.shape)}] vs [{string.Join(", ", want.Q.shape)}] / [{string.Join(", ", want.Scale.shape)}]";
        long scales = Unequal(got.Scale, want.Scale);
        long values = Unequal(got.Q.to(ScalarType.Float32), want.Q.to(ScalarType.Float32));
        return scales == 0 && values == 0 ? null : $"{scales} of {want.Scale.numel()} scales and {values} of {want.Q.numel()} values differ";
    }

    // Elements that differ, NaN matching NaN.
    private static long Unequal(Tensor a, Tensor b) => (a.ne(b) & ~(a.isnan() & b.isnan())).sum().item<long>();

    private static string? Differs(Tensor got, Tensor want, double bound)
    {
        using var scope = NewDisposeScope();
        if (!got.shape.SequenceEqual(want.shape)) return $"shape [{string.Join(", ", got.shape)}] vs [{string.Join(", ", want.shape)}]";
        var g = got.to(ScalarType.Float32);
        var w = want.to(ScalarType.Float32);
        double scale = w.abs().max().item<float>() + 1e-12;
        double worst = (g - w).abs().max().item<float>() / scale;
        return worst <= bound && g.isfinite().all().item<bool>() ? null : $"largest difference {worst:G3} of the values' scale (allowed {bound:G3})";
    }
}
