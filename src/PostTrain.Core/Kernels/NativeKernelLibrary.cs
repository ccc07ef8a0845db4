// libposttrain_kernels.so (native/kernels, built on the GPU machine by scripts/gpu/build-kernels.sh), loaded once per
// process for every kernel group that uses it (FusedKernels, Fp8Kernels): POSTTRAIN_KERNELS_LIB, else next to
// PostTrain's binaries. A missing or unloadable library is an Error the groups report as their reason to stay off.
using PostTrain.Core.Runtime;

namespace PostTrain.Core.Kernels;

internal static class NativeKernelLibrary
{
    public const string LibraryEnvVar = "POSTTRAIN_KERNELS_LIB";
    public const string LibraryFileName = "libposttrain_kernels.so";

    private static readonly NativeLibraryFile File = new(LibraryEnvVar, LibraryFileName, "scripts/gpu/build-kernels.sh");

    /// <summary>The library's handle and path, or the reason it is not there (Handle is zero then).</summary>
    public static (IntPtr Handle, string Path, string? Error) Value => File.Value;

    /// <summary>A delegate for the export <paramref name="name"/> (EntryPointNotFoundException when it is missing).</summary>
    public static T Function<T>(IntPtr library, string name) where T : Delegate => NativeLibraryFile.Function<T>(library, name);
}
