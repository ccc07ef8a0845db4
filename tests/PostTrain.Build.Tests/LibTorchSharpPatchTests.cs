using System.Security.Cryptography;
using PostTrain.Build;
using static TorchSharp.torch;

namespace PostTrain.Build.Tests;

public sealed class LibTorchSharpPatchTests
{
    static string CacheLibrary()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    static string OutputLibrary() =>
        Directory.EnumerateFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).First();

    static string TempCopy(string source)
    {
        string dir = Path.Combine(Path.GetTempPath(), "posttrain-patch-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string dest = Path.Combine(dir, Path.GetFileName(source));
        File.Copy(source, dest);
        return dest;
    }

    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public void TheBuildOutputLibraryLoadsAndComputes()
    {
        // Loading TorchSharp at all proves the copy in the output folder is loadable on this system.
        using var t = arange(1, 5, dtype: ScalarType.Float32);   // [1,2,3,4]
        Assert.Equal(10f, t.sum().item<float>());
        var state = LibTorchSharpPatch.Inspect(OutputLibrary());
        if (LibTorchSharpPatch.SystemLibStdCxxHas(LibTorchSharpPatch.NeededVersion))
            Assert.Equal(PatchOutcome.Patched, state.Outcome);          // left as shipped: "would patch"
        else
            Assert.Equal(PatchOutcome.AlreadyPatched, state.Outcome);   // the build step patched it
    }

    [Fact]
    public void PatchChangesOnlyTheThreeFieldsAndIsIdempotent()
    {
        string cache = CacheLibrary();
        if (!File.Exists(cache)) return; // a NUGET_PACKAGES layout we do not know: covered by the test above
        string cacheHash = Sha(cache);
        string copy = TempCopy(cache);
        byte[] before = File.ReadAllBytes(copy);

        Assert.Equal(PatchOutcome.Patched, LibTorchSharpPatch.Inspect(copy).Outcome);
        Assert.Equal(PatchOutcome.Patched, LibTorchSharpPatch.Apply(copy).Outcome);
        byte[] after = File.ReadAllBytes(copy);
        Assert.Equal(before.Length, after.Length);

        // Differences: 1 byte of vna_flags, 2 bytes of one versym entry (at most), and the renamed string.
        int diff = 0;
        for (int i = 0; i < before.Length; i++) if (before[i] != after[i]) diff++;
        Assert.InRange(diff, 3, 2 + LibTorchSharpPatch.HookSymbol.Length + 1);
        // The import's name in .dynstr is gone (a copy may remain in the static .strtab, which the loader ignores).
        int Count(byte[] bytes, string s)
        {
            string text = System.Text.Encoding.ASCII.GetString(bytes);
            int n = 0;
            for (int at = text.IndexOf(s, StringComparison.Ordinal); at >= 0; at = text.IndexOf(s, at + 1, StringComparison.Ordinal)) n++;
            return n;
        }
        Assert.Equal(Count(before, LibTorchSharpPatch.HookSymbol) - 1, Count(after, LibTorchSharpPatch.HookSymbol));
        Assert.Equal(Count(before, "sched_yield\0\0") + 1, Count(after, "sched_yield\0\0"));

        // Second run: nothing to do, file untouched.
        string patchedHash = Sha(copy);
        Assert.Equal(PatchOutcome.AlreadyPatched, LibTorchSharpPatch.Apply(copy).Outcome);
        Assert.Equal(patchedHash, Sha(copy));
        Assert.Equal(cacheHash, Sha(cache)); // the NuGet cache is never written
    }

    [Fact]
    public void ALibraryThatDoesNotNeedTheNewVersionIsLeftAlone()
    {
        // libc10.so ships beside it and needs no GLIBCXX_3.4.32: it stands for a newer TorchSharp build.
        string c10 = Directory.EnumerateFiles(AppContext.BaseDirectory, "libc10.so", SearchOption.AllDirectories).First();
        string copy = TempCopy(c10);
        string hash = Sha(copy);
        Assert.Equal(PatchOutcome.NotNeeded, LibTorchSharpPatch.Apply(copy).Outcome);
        Assert.Equal(hash, Sha(copy));
    }

    [Fact]
    public void ANonElfFileIsReportedNotChanged()
    {
        string path = Path.GetTempFileName();
        File.WriteAllText(path, "not a shared library");
        var r = LibTorchSharpPatch.Apply(path);
        Assert.Equal(PatchOutcome.Unpatchable, r.Outcome);
        Assert.Contains(path, r.Detail);
        Assert.Equal("not a shared library", File.ReadAllText(path));
    }
}
