// What the CPU can check of the native FP8 kernels' loading: the cubin metadata written by native/kernels/fp8_gemm.py
// is read into launch settings, and a broken file is refused with what is wrong; without the native library (this
// machine) the kernels are off with the reason, and Fp8Kernels.For never offers them off CUDA.
using System.Text.Json;
using PostTrain.Core.Kernels;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Kernels;

public sealed class NativeFp8KernelsTests
{
    private static string Write(string json)
    {
        var dir = Path.Combine(Path.GetTempPath(), "pt-fp8meta-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, NativeFp8Kernels.MetadataFileName), json);
        return dir;
    }

    [Fact]
    public void MetadataBecomesLaunchSettingsPerSlot()
    {
        var dir = Write("""
            {"triton": "3.6.0", "capability": [9, 0], "kernels": [
              {"slot": 1, "name": "fp8_gemm_kgrouped", "num_warps": 8, "shared": 131072, "params": 11, "cubin": "fp8_gemm_kgrouped.cubin", "tile": [64, 128]},
              {"slot": 0, "name": "fp8_gemm_mgrouped", "num_warps": 4, "shared": 98304, "params": 10, "cubin": "fp8_gemm_mgrouped.cubin", "tile": [128, 256]}]}
            """);
        var list = NativeFp8Kernels.ReadMetadata(Path.Combine(dir, NativeFp8Kernels.MetadataFileName), dir);
        var m = list.Single(k => k.Slot == 0);
        Assert.Equal(("fp8_gemm_mgrouped", 4, 98304, 10, 128, 256), (m.Name, m.Warps, m.Shared, m.Parameters, m.Tile0, m.Tile1));
        Assert.Equal(Path.Combine(dir, "fp8_gemm_mgrouped.cubin"), m.Path);
        Assert.Equal((131072, 64, 128), (list.Single(k => k.Slot == 1).Shared, list.Single(k => k.Slot == 1).Tile0, list.Single(k => k.Slot == 1).Tile1));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void IncompleteOrBrokenMetadataIsRefused()
    {
        var oneSlot = Write("""{"kernels": [{"slot": 0, "name": "a", "num_warps": 8, "shared": 0, "params": 9, "cubin": "a.cubin", "tile": [64, 128]}]}""");
        var e = Assert.Throws<InvalidOperationException>(() => NativeFp8Kernels.ReadMetadata(Path.Combine(oneSlot, NativeFp8Kernels.MetadataFileName), oneSlot));
        Assert.Contains("slots 0 and 1", e.Message);
        var noName = Write("""{"kernels": [{"slot": 0, "num_warps": 8, "shared": 0, "params": 9, "cubin": "a.cubin"}]}""");
        Assert.Throws<KeyNotFoundException>(() => NativeFp8Kernels.ReadMetadata(Path.Combine(noName, NativeFp8Kernels.MetadataFileName), noName));
        var noTile = Write("""{"kernels": [{"slot": 0, "name": "a", "num_warps": 8, "shared": 0, "params": 9, "cubin": "a.cubin"}]}""");
        Assert.Throws<KeyNotFoundException>(() => NativeFp8Kernels.ReadMetadata(Path.Combine(noTile, NativeFp8Kernels.MetadataFileName), noTile));
        var truncated = Write("""{"kernels": [""");
        Assert.ThrowsAny<JsonException>(() => NativeFp8Kernels.ReadMetadata(Path.Combine(truncated, NativeFp8Kernels.MetadataFileName), truncated));
        foreach (var d in new[] { oneSlot, noName, noTile, truncated }) Directory.Delete(d, true);
    }

    [Fact]
    public void WithoutTheLibraryTheKernelsAreOffWithTheReason()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(NativeKernelLibrary.LibraryEnvVar))) return;   // a GPU machine's setup
        var (kernels, error) = NativeFp8Kernels.Load();
        Assert.Null(kernels);
        Assert.Contains(NativeKernelLibrary.LibraryFileName, error);
        Assert.Contains("build-kernels.sh", error);
        Assert.Null(Fp8Kernels.For(zeros(2, 2)));                                     // never on the CPU
    }
}
