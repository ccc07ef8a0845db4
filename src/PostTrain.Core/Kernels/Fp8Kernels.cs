// Which FP8 kernel backend the MoE experts use on a tensor (Fp8.GroupedLinear): the native quantisation kernels and
// Triton grouped GEMMs (NativeFp8Kernels) when the tensor is on CUDA, the library and its cubins load and the
// self-check on that device passed; otherwise null, and the experts keep the per-expert _scaled_mm loop
// (Fp8GroupedFunction). Self-check (once per device, at first use, which is an eager step): every kernel against
// ReferenceFp8Kernels on the same device and inputs: quantisers bit for bit (float32 and bfloat16 inputs, widths that
// are and are not multiples of 128 or of 8, an all-zero tile, a NaN), both grouped GEMMs on identical FP8 operands (N != K, an expert with no rows,
// padding blocks) within the FP8 tensor cores' accumulation error. A failure prints why once and keeps the loop.
// POSTTRAIN_FP8_KERNELS=0 turns the kernels off. The grouped GEMMs run on the TMA + wgmma kernels (native/kernels/sm90a,
// Hopper only) in their persistent variant (one CTA per SM walking the tiles) by default where both weight dimensions
// are wide (below: the Triton cubins), when their library loads on that device and they pass the same self-check;
// otherwise on the Triton cubins, and the status line says why.
// POSTTRAIN_FP8_WGMMA=0 keeps the Triton GEMMs, =1 asks for the one-CTA-per-tile wgmma kernels for every GEMM,
// =persistent for the persistent ones for every GEMM, and =auto (the default) for the persistent ones where both of a
// GEMM's weight dimensions are at least WgmmaAutoMinDim wide, the Triton GEMMs below. The default became wgmma on
// 2026-12-05, after their first GPU run (H100): checked against the reference and faster than the Triton GEMMs at
// bench-moe-large in every row; and "auto" on 2026-12-06, when the H200 showed the Triton GEMMs faster at bench-moe's
// narrow shapes in every row (README, FP8 training). Under "auto" the self-check runs twice, once with every GEMM on
// the wgmma kernels and once with every GEMM on the Triton ones (its shapes are narrow), as both may run.
using System.Runtime.InteropServices;
using PostTrain.Core.Precision;
using static TorchSharp.torch;

namespace PostTrain.Core.Kernels;

public static class Fp8Kernels
{
    public const string SwitchEnvVar = "POSTTRAIN_FP8_KERNELS";
    public const string WgmmaEnvVar = "POSTTRAIN_FP8_WGMMA";

    /// <summary>Under POSTTRAIN_FP8_WGMMA=auto (the default) a grouped GEMM runs on the persistent wgmma kernels when
    /// both of its weight dimensions are at least this wide, else on the Triton ones. The H200 run of 2026-12-06 put
    /// the crossing between bench-moe's widths (384, 768: Triton faster in all six expert GEMMs) and bench-moe-large's
    /// (1408, 2048: wgmma faster in all six).</summary>
    public const int WgmmaAutoMinDim = 1024;

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

    // Which grouped GEMMs a device runs: the Triton cubins (Wgmma false) or the wgmma kernels (persistent or one CTA per
    // tile) for the GEMMs whose weight dimensions are both at least MinDim (0: all), the Triton cubins for the rest.
    internal sealed record GemmChoice(bool Wgmma, bool Persistent = false, int MinDim = 0)
    {
        public static readonly GemmChoice Triton = new(false);

        public string Label => !Wgmma ? "Triton grouped GEMMs"
            : (Persistent ? "TMA + wgmma grouped GEMMs, persistent" : "TMA + wgmma grouped GEMMs")
              + (MinDim > 0 ? $", where both weight dimensions are >= {MinDim} (Triton below)" : "");

        public void Apply(NativeFp8Kernels native, int index)
        {
            if (Wgmma) native.UseWgmma(index, true, Persistent, MinDim);
            else if (native.UsesWgmma(index)) native.UseWgmma(index, false);
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, GemmChoice> Asked = new();

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
            return (null, FirstLine(e), "");
        }
        var asked = Environment.GetEnvironmentVariable(WgmmaEnvVar);
        var mode = string.IsNullOrEmpty(asked) ? "auto" : asked;
        GemmChoice? choice = mode switch
        {
            "auto" => new GemmChoice(true, true, WgmmaAutoMinDim),
            "persistent" => new GemmChoice(true, true),
            "1" => new GemmChoice(true),
            _ => null,
        };
        if (choice is null)
        {
            GemmChoice.Triton.Apply(native, index);   // wgmma asked for earlier in this process, not now
            Asked[index] = GemmChoice.Triton;
            return (native, null, mode == "0" ? $"Triton grouped GEMMs ({WgmmaEnvVar}=0)"
                : $"Triton grouped GEMMs ({WgmmaEnvVar}={mode} is none of 0, 1, persistent, auto)");
        }
        try
        {
            choice.Apply(native, index);
            Asked[index] = choice;
            return (native, null, choice.Label);
        }
        catch (InvalidOperationException e)
        {
            Asked[index] = GemmChoice.Triton;
            return (native, null, $"Triton grouped GEMMs; wgmma off: {FirstLine(e)}");
        }
    }

    private static (IFp8Kernels? Kernels, string Status) Choose(Device device, int index)
    {
        if (Environment.GetEnvironmentVariable(SwitchEnvVar) == "0") return (null, $"off ({SwitchEnvVar}=0)");
        var (native, error, gemms) = LoadNative(index);
        if (native is null) return (null, "off: " + error);
        var (failure, checkedGemms) = SelfCheckNative(native, device);
        return failure is null
            ? (native, $"on ({checkedGemms ?? gemms}; quantisers bit-exact, grouped GEMMs within the FP8 accumulation bound of the reference)")
            : (null, "off: self-check failed: " + failure);
    }

    /// <summary>The self-check of the native kernels on <paramref name="device"/> as Native configured them: every
    /// grouped GEMM backend that may run is checked (under "auto" the wgmma kernels on every GEMM, then the Triton ones),
    /// and a backend that fails is left out, the device keeping the other (DecideGemms). Returns the failure (null when
    /// the kernels may run) and, when the choice changed, the grouped GEMMs the device runs now, with why.</summary>
    public static (string? Failure, string? Gemms) SelfCheckNative(IFp8Kernels kernels, Device device)
    {
        int index = device.index < 0 ? 0 : device.index;
        if (kernels is not NativeFp8Kernels native || !Asked.TryGetValue(index, out var asked))
            return (SelfCheck(kernels, ReferenceFp8Kernels.Instance, device), null);
        var (final, failure, why) = DecideGemms(asked, choice =>
        {
            try
            {
                choice.Apply(native, index);
            }
            catch (InvalidOperationException e)
            {
                return $"{choice.Label}: {FirstLine(e)}";
            }
            return SelfCheck(native, ReferenceFp8Kernels.Instance, device);
        });
        final.Apply(native, index);
        if (why is null) return (failure, null);
        NativeGemms[index] = why;
        return (failure, why);
    }

    /// <summary>Which grouped GEMMs to run, given what was asked and <paramref name="check"/> (the self-check with every
    /// GEMM on the given backend: null when it passed): the asked choice when every backend it may use passed;
    /// the wgmma kernels for every GEMM when only the Triton ones failed; the Triton ones when the wgmma ones failed.
    /// Failure is null unless the GEMMs that remain failed too; Why says what changed (null: nothing).</summary>
    internal static (GemmChoice Final, string? Failure, string? Why) DecideGemms(GemmChoice asked, Func<GemmChoice, string?> check)
    {
        if (!asked.Wgmma) return (asked, check(asked), null);
        var allWgmma = asked with { MinDim = 0 };
        var wgmmaFailure = check(allWgmma);
        if (wgmmaFailure is null && asked.MinDim == 0) return (asked, null, null);
        var tritonFailure = check(GemmChoice.Triton);
        if (wgmmaFailure is null && tritonFailure is null) return (asked, null, null);
        if (wgmmaFailure is null) return (allWgmma, null, $"{allWgmma.Label}; Triton off: self-check failed: {tritonFailure}");
        return (GemmChoice.Triton, tritonFailure, $"Triton grouped GEMMs; wgmma off: self-check failed: {wgmmaFailure}");
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
            return FirstLine(e);
        }
    }

    // A native error's first line (the rest is libtorch's backtrace).
    private static string FirstLine(Exception e) => e.Message.Split('\n')[0];

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
