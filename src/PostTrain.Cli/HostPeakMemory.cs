// The process's peak resident memory on Linux (VmHWM in /proc/self/status), resettable to the current resident size by
// writing 5 to /proc/self/clear_refs: bench-train's memory measure on the CPU, where no caching allocator counts bytes.
// A coarse measure (glibc keeps some freed memory; the runtime's own memory is in it), good for comparing runs of one
// process that differ in what they keep alive. Null where the files are not there (not Linux).
namespace PostTrain.Cli;

internal static class HostPeakMemory
{
    /// <summary>Resets the peak to the current resident size; false where that is not possible.</summary>
    public static bool Reset()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>Peak resident bytes since the last reset (or the process start), or null.</summary>
    public static long? PeakBytes()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0]) * 1024;
        }
        catch (IOException) { return null; }
    }
}
