// One of PostTrain's native libraries (built on the user's GPU machine at first use: libposttrain_cudagraph.so,
// libposttrain_kernels.so), loaded once per process: the path in its environment variable, else next to PostTrain's
// binaries. A missing or unloadable library is an Error its users report as their reason to stay off.
using System.Runtime.InteropServices;

namespace PostTrain.Core.Runtime;

public sealed class NativeLibraryFile
{
    private readonly Lazy<(IntPtr Handle, string Path, string? Error)> loaded;

    /// <param name="envVar">Environment variable naming the library's path.</param>
    /// <param name="fileName">File name next to PostTrain's binaries.</param>
    /// <param name="buildScript">The script that builds it, named in the error when it is missing.</param>
    public NativeLibraryFile(string envVar, string fileName, string buildScript)
    {
        EnvVar = envVar;
        FileName = fileName;
        loaded = new(() =>
        {
            var env = Environment.GetEnvironmentVariable(envVar);
            var path = !string.IsNullOrEmpty(env) ? env : Path.Combine(AppContext.BaseDirectory, fileName);
            if (!File.Exists(path)) return (IntPtr.Zero, path, $"{path} not found (build it with {buildScript}; set {envVar})");
            if (!NativeLibrary.TryLoad(path, out var lib)) return (IntPtr.Zero, path, $"{path} did not load (built against another libtorch?)");
            return (lib, path, null);
        });
    }

    public string EnvVar { get; }
    public string FileName { get; }

    /// <summary>The library's handle and path, or the reason it is not there (Handle is zero then).</summary>
    public (IntPtr Handle, string Path, string? Error) Value => loaded.Value;

    /// <summary>A delegate for the export <paramref name="name"/> (EntryPointNotFoundException when it is missing).</summary>
    public static T Function<T>(IntPtr library, string name) where T : Delegate =>
        Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(library, name));

    /// <summary>The export <paramref name="name"/> as a delegate, or null when the library lacks it (an older build).</summary>
    public static T? TryFunction<T>(IntPtr library, string name) where T : Delegate =>
        NativeLibrary.TryGetExport(library, name, out var f) ? Marshal.GetDelegateForFunctionPointer<T>(f) : null;
}
