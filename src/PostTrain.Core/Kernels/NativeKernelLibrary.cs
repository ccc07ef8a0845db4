// libposttrain_kernels.so (native/kernels, built on the GPU machine by scripts/gpu/build-kernels.sh), loaded once per
// process for every kernel group that uses it (FusedKernels, Fp8Kernels): POSTTRAIN_KERNELS_LIB, else next to
// PostTrain's binaries. A missing or unloadable library is an Error the groups report as their reason to stay off.
using System.Runtime.InteropServices;
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

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate IntPtr LastErrorFn();
    private static readonly Lazy<LastErrorFn> LastError = new(() => Function<LastErrorFn>(Value.Handle, "ptk_last_error"));

    /// <summary>Throws "<paramref name="what"/>: the library's reason" when an entry point returned <paramref name="rc"/>
    /// != 0 (every entry point returns 0, or -1 with the reason in ptk_last_error() of the calling thread).</summary>
    public static void Check(int rc, string what)
    {
        if (rc != 0) throw new InvalidOperationException($"{what}: {Marshal.PtrToStringUTF8(LastError.Value()) ?? ""}");
    }
}
