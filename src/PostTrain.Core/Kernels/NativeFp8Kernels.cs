// IFp8Kernels over libposttrain_kernels.so (native/kernels/posttrain_fp8.cu) and the grouped-GEMM cubins that
// scripts/gpu/build-kernels.sh compiles from native/kernels/fp8_gemm.py into fp8-kernels/ beside the library
// (POSTTRAIN_FP8_KERNELS_DIR overrides): fp8_kernels.json names each cubin's entry, warps, shared memory and parameter
// count; the cubins are loaded into the device's context once. On Hopper the same folder may hold
// libposttrain_fp8_wgmma.so (native/kernels/sm90a: TMA + wgmma grouped GEMMs, same contracts), which UseWgmma switches
// a device's grouped GEMMs to. Outputs are allocated here, so a CUDA-graph capture sees only kernel launches on the
// current stream.
using System.Runtime.InteropServices;
using System.Text.Json;
using PostTrain.Core.Precision;
using static TorchSharp.torch;

namespace PostTrain.Core.Kernels;

internal sealed class NativeFp8Kernels : IFp8Kernels
{
    public const string CubinDirEnvVar = "POSTTRAIN_FP8_KERNELS_DIR";
    public const string MetadataFileName = "fp8_kernels.json";
    public const string WgmmaLibraryFileName = "libposttrain_fp8_wgmma.so";

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int QuantFn(IntPtr x, IntPtr q, IntPtr s);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int RequantFn(IntPtr xq, IntPtr xs, IntPtr q, IntPtr s);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int Quant2Fn(IntPtr x, IntPtr q, IntPtr s, IntPtr qt, IntPtr st);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GemmFn(IntPtr a, IntPtr sa, IntPtr b, IntPtr sb, IntPtr table, IntPtr c);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int LoadKernelFn(int slot, int device, [MarshalAs(UnmanagedType.LPUTF8Str)] string path,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string name, int warps, int shared, int parameters, int tile0, int tile1);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int UseWgmmaFn(int device, [MarshalAs(UnmanagedType.LPUTF8Str)] string? path, int persistent, int minDim);

    private QuantFn quantRows = null!, quantCols = null!, quantBlocks = null!;
    private Quant2Fn quantBlocks2 = null!;
    private RequantFn requantCols = null!;
    private GemmFn mgrouped = null!, kgrouped = null!;
    private LoadKernelFn loadKernel = null!;
    private UseWgmmaFn useWgmma = null!;
    private IReadOnlyList<CubinInfo> cubins = [];
    private string wgmmaPath = "";
    private readonly HashSet<int> wgmmaDevices = [];

    internal sealed record CubinInfo(int Slot, string Name, int Warps, int Shared, int Parameters, string Path, int Tile0, int Tile1);

    /// <summary>The library's FP8 entry points and the cubin metadata, or why they are not available.</summary>
    public static (NativeFp8Kernels?, string?) Load()
    {
        var (lib, path, error) = NativeKernelLibrary.Value;
        if (error is not null) return (null, error);
        var env = Environment.GetEnvironmentVariable(CubinDirEnvVar);
        var dir = !string.IsNullOrEmpty(env) ? env : Path.Combine(Path.GetDirectoryName(path) ?? ".", "fp8-kernels");
        var metadata = Path.Combine(dir, MetadataFileName);
        if (!File.Exists(metadata))
            return (null, $"{metadata} not found (the Triton build of native/kernels/fp8_gemm.py failed or did not run; set {CubinDirEnvVar})");
        T Fn<T>(string name) where T : Delegate => NativeKernelLibrary.Function<T>(lib, name);
        try
        {
            return (new NativeFp8Kernels
            {
                quantRows = Fn<QuantFn>("ptk_fp8_quant_rows"),
                quantCols = Fn<QuantFn>("ptk_fp8_quant_cols"),
                quantBlocks = Fn<QuantFn>("ptk_fp8_quant_blocks"),
                quantBlocks2 = Fn<Quant2Fn>("ptk_fp8_quant_blocks2"),
                requantCols = Fn<RequantFn>("ptk_fp8_requant_cols"),
                mgrouped = Fn<GemmFn>("ptk_fp8_gemm_mgrouped"),
                kgrouped = Fn<GemmFn>("ptk_fp8_gemm_kgrouped"),
                loadKernel = Fn<LoadKernelFn>("ptk_fp8_load_kernel"),
                useWgmma = Fn<UseWgmmaFn>("ptk_fp8_use_wgmma"),
                cubins = ReadMetadata(metadata, dir),
                wgmmaPath = Path.Combine(dir, WgmmaLibraryFileName),
            }, null);
        }
        catch (EntryPointNotFoundException e)
        {
            return (null, $"{path}: {e.Message} (rebuild with scripts/gpu/build-kernels.sh)");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return (null, $"{metadata}: {e.Message}");
        }
    }

    internal static IReadOnlyList<CubinInfo> ReadMetadata(string metadata, string dir)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(metadata));
        var list = doc.RootElement.GetProperty("kernels").EnumerateArray().Select(k => new CubinInfo(
            k.GetProperty("slot").GetInt32(), k.GetProperty("name").GetString()!, k.GetProperty("num_warps").GetInt32(),
            k.GetProperty("shared").GetInt32(), k.GetProperty("params").GetInt32(),
            Path.Combine(dir, k.GetProperty("cubin").GetString()!),
            k.GetProperty("tile")[0].GetInt32(), k.GetProperty("tile")[1].GetInt32())).ToList();
        if (list.Select(k => k.Slot).OrderBy(s => s).SequenceEqual([0, 1]) is false)
            throw new InvalidOperationException("expected the two grouped GEMMs (slots 0 and 1)");
        return list;
    }

    /// <summary>Loads the cubins into <paramref name="device"/>'s context (once per device, before first use).</summary>
    public void LoadOn(int device)
    {
        foreach (var k in cubins)
            Check(loadKernel(k.Slot, device, k.Path, k.Name, k.Warps, k.Shared, k.Parameters, k.Tile0, k.Tile1), $"load {Path.GetFileName(k.Path)}");
    }

    /// <summary>Switches <paramref name="device"/>'s grouped GEMMs to the TMA + wgmma library (<paramref name="on"/>; its
    /// persistent kernels when <paramref name="persistent"/>; only the GEMMs whose two weight dimensions are both at
    /// least <paramref name="minDim"/>, the Triton cubins running the narrower ones) or all back to the Triton cubins;
    /// throws InvalidOperationException with the reason when the library is missing, does not load, or the device is
    /// not sm_90.</summary>
    public void UseWgmma(int device, bool on, bool persistent = false, int minDim = 0)
    {
        if (on && !File.Exists(wgmmaPath))
            throw new InvalidOperationException($"{wgmmaPath} not found (scripts/gpu/build-kernels.sh builds it on sm_90 GPUs)");
        Check(useWgmma(device, on ? wgmmaPath : null, persistent ? 1 : 0, minDim), on ? "use wgmma" : "leave wgmma");
        lock (wgmmaDevices)
            if (on) wgmmaDevices.Add(device);
            else wgmmaDevices.Remove(device);
    }

    /// <summary>Whether <paramref name="device"/>'s grouped GEMMs run on the wgmma library.</summary>
    public bool UsesWgmma(int device)
    {
        lock (wgmmaDevices) return wgmmaDevices.Contains(device);
    }

    private static void Check(int rc, string what) => NativeKernelLibrary.Check(rc, $"fp8 kernel {what}");

    public (Tensor Q, Tensor Scale) QuantRows(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xc = x.contiguous();
        long m = x.shape[0], kp = Fp8.RoundUp(x.shape[1], Fp8.Block);
        var q = empty(m, kp, dtype: Fp8.Float8E4M3, device: x.device);
        var s = empty(m, kp / Fp8.Block, dtype: ScalarType.Float32, device: x.device);
        Check(quantRows(xc.Handle, q.Handle, s.Handle), "quant_rows");
        return scope.MoveToOuter(q, s);
    }

    public (Tensor Q, Tensor Scale) QuantColumns(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xc = x.contiguous();
        long m = x.shape[0], np = Fp8.RoundUp(x.shape[1], Fp8.Block);
        var q = empty(np, m, dtype: Fp8.Float8E4M3, device: x.device);
        var s = empty(np, m / Fp8.Block, dtype: ScalarType.Float32, device: x.device);
        Check(quantCols(xc.Handle, q.Handle, s.Handle), "quant_cols");
        return scope.MoveToOuter(q, s);
    }

    public (Tensor Q, Tensor Scale) QuantBlocks(Tensor w)
    {
        using var scope = NewDisposeScope();
        var wc = w.contiguous();
        var (q, s) = BlockOutputs(w, transposed: false);
        Check(quantBlocks(wc.Handle, q.Handle, s.Handle), "quant_blocks");
        return scope.MoveToOuter(q, s);
    }

    public (Tensor Q, Tensor Scale, Tensor QT, Tensor ScaleT) QuantBlocksBoth(Tensor w)
    {
        using var scope = NewDisposeScope();
        var wc = w.contiguous();
        var (q, s) = BlockOutputs(w, transposed: false);
        var (qt, st) = BlockOutputs(w, transposed: true);
        Check(quantBlocks2(wc.Handle, q.Handle, s.Handle, qt.Handle, st.Handle), "quant_blocks2");
        scope.MoveToOuter(q, s, qt, st);
        return (q, s, qt, st);
    }

    // q (..., Np, Kp) and its 128x128 block scales for w (..., N, K), or the transposed (..., Kp, Np).
    private static (Tensor Q, Tensor Scale) BlockOutputs(Tensor w, bool transposed)
    {
        var lead = w.shape[..^2];
        long np = Fp8.RoundUp(w.shape[^2], Fp8.Block), kp = Fp8.RoundUp(w.shape[^1], Fp8.Block);
        var (rows, cols) = transposed ? (kp, np) : (np, kp);
        return (empty([.. lead, rows, cols], dtype: Fp8.Float8E4M3, device: w.device),
            empty([.. lead, rows / Fp8.Block, cols / Fp8.Block], dtype: ScalarType.Float32, device: w.device));
    }

    public (Tensor Q, Tensor Scale) RequantColumns(Tensor xq, Tensor xs)
    {
        using var scope = NewDisposeScope();
        long m = xq.shape[0], kp = xq.shape[1];
        var q = empty(kp, m, dtype: Fp8.Float8E4M3, device: xq.device);
        var s = empty(kp, m / Fp8.Block, dtype: ScalarType.Float32, device: xq.device);
        Check(requantCols(xq.contiguous().Handle, xs.contiguous().Handle, q.Handle, s.Handle), "requant_cols");
        return scope.MoveToOuter(q, s);
    }

    public Tensor GemmMGrouped(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor blockExpert)
    {
        var c = empty(qa.shape[0], qb.shape[1], dtype: ScalarType.BFloat16, device: qa.device);
        Check(mgrouped(qa.Handle, sa.Handle, qb.Handle, sb.Handle, blockExpert.Handle, c.Handle), "gemm_mgrouped");
        return c;
    }

    public Tensor GemmKGrouped(Tensor qa, Tensor sa, Tensor qb, Tensor sb, Tensor segments, ScalarType outType = ScalarType.Float32)
    {
        if (outType is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new ArgumentException($"GemmKGrouped writes float32 or bfloat16, not {outType}", nameof(outType));
        var c = empty(segments.shape[0] - 1, qa.shape[0], qb.shape[0], dtype: outType, device: qa.device);
        Check(kgrouped(qa.Handle, sa.Handle, qb.Handle, sb.Handle, segments.Handle, c.Handle), "gemm_kgrouped");
        return c;
    }
}
