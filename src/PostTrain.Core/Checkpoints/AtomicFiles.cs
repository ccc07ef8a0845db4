// Crash-safe placement of files and directories. A file is written under a hidden temp name in the
// same directory and renamed over the target (rename(2) is atomic: readers see the old file or the
// new one, never a partial one). A directory is built as a hidden temp sibling and then swapped in:
// on Linux with renameat2(RENAME_EXCHANGE), an atomic exchange, so the path always names a complete
// checkpoint; elsewhere (or where the filesystem refuses the exchange) by two renames, leaving a
// brief moment where the path does not exist, but never a mix. On any failure the temp file or
// directory is deleted and the previous content stays. Simplification: files are fsynced, the parent
// directories are not, so after a power cut (not a process crash) the last rename may be lost.
using System.Runtime.InteropServices;

namespace PostTrain.Core.Checkpoints;

internal static partial class AtomicFiles
{
    /// <summary>Calls <paramref name="write"/> with a temp path next to <paramref name="path"/>, then renames it into place.</summary>
    public static void WriteFile(string path, Action<string> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            write(temp);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDeleteFile(temp);
            throw;
        }
    }

    /// <summary>Calls <paramref name="write"/> with an empty temp directory, then swaps it in as <paramref name="dir"/>.</summary>
    public static void ReplaceDirectory(string dir, Action<string> write)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        if (File.Exists(full))
            throw new IOException($"{full}: is a file, cannot replace it with a checkpoint directory");
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string name = Path.GetFileName(full);
        string temp = Path.Combine(parent, $".{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            SwapIn(temp, full, Path.Combine(parent, $".{name}.old-{Guid.NewGuid():N}"));
        }
        catch
        {
            TryDeleteDirectory(temp);
            throw;
        }
    }

    private static void SwapIn(string temp, string target, string old)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(temp, target);
            return;
        }
        if (OperatingSystem.IsLinux() && TryExchange(temp, target))
        {
            TryDeleteDirectory(temp); // now holds the previous checkpoint
            return;
        }
        Directory.Move(target, old);
        try
        {
            Directory.Move(temp, target);
        }
        catch
        {
            Directory.Move(old, target);
            throw;
        }
        TryDeleteDirectory(old);
    }

    private const int AtFdCwd = -100;
    private const uint RenameExchange = 2;

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);

    internal static bool TryExchange(string a, string b)
    {
        try
        {
            return RenameAt2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    public static void TryDeleteFile(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public static void TryDeleteDirectory(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
