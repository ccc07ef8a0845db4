// Tells whether the index file a reader opened is still the one at its path, i.e. whether the
// checkpoint directory was swapped meanwhile. On Linux the open handle's /proc/self/fd link names
// where that very file is now (a swapped-out directory has moved or been deleted), which needs no
// clock; elsewhere, and as a second check, length and modification time are compared.
using Microsoft.Win32.SafeHandles;

namespace PostTrain.Core.Checkpoints;

internal sealed record IndexIdentity(string? Location, long Length, DateTime Written)
{
    public static IndexIdentity Of(SafeFileHandle handle) =>
        new(CurrentLocation(handle), RandomAccess.GetLength(handle), File.GetLastWriteTimeUtc(handle));

    /// <summary>True when the handle's file moved or changed, or the path now names another file.</summary>
    public static bool Changed(IndexIdentity before, SafeFileHandle handle, string path)
    {
        try
        {
            if (Of(handle) != before) return true;
            var now = new FileInfo(path);
            return !now.Exists || now.Length != before.Length || now.LastWriteTimeUtc != before.Written;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static string? CurrentLocation(SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            return new FileInfo($"/proc/self/fd/{handle.DangerousGetHandle()}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
