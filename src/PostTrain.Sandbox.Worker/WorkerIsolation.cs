// What the worker does to itself before it reads any untrusted code:
//  1. moves the protocol channel off fds 0/1 to private descriptors and points 0/1 at /dev/null, so code
//     that reaches the real stdout writes into nothing and cannot forge a result frame;
//  2. sets rlimits: no core files, 1 MiB files, a bounded descriptor count, address space and data segment capped near the
//     heap limit, a CPU-time cap moved per test case;
//  3. sets no_new_privs and, when started as root, drops to nobody (65534) with no supplementary groups,
//     which makes RLIMIT_NPROC effective and the file system read-only outside world-writable places;
//  4. notes whether the host managed to put it in a fresh network namespace.
// Each step reports what took effect; the host keeps the list (SandboxPool.Isolation).
using Microsoft.Win32.SafeHandles;

namespace PostTrain.Sandbox.Worker;

internal static class WorkerIsolation
{
    public const uint Nobody = 65534;

    public static (Stream Input, Stream Output) TakeProtocolChannel()
    {
        var inFd = Native.dup(0);
        var outFd = Native.dup(1);
        var devNull = Native.open("/dev/null", Native.O_RDWR);
        if (inFd < 0 || outFd < 0 || devNull < 0 || Native.dup2(devNull, 0) < 0 || Native.dup2(devNull, 1) < 0)
            throw new InvalidOperationException("cannot move the protocol channel: " + Native.LastError());
        Native.close(devNull);
        Native.fcntl(inFd, Native.F_SETFD, Native.FD_CLOEXEC);
        Native.fcntl(outFd, Native.F_SETFD, Native.FD_CLOEXEC);
        var input = new FileStream(new SafeFileHandle(inFd, ownsHandle: true), FileAccess.Read, 1 << 16);
        var output = new FileStream(new SafeFileHandle(outFd, ownsHandle: true), FileAccess.Write, 1 << 16);
        return (input, output);
    }

    public static List<string> ApplyLimits(long heapBytes)
    {
        var applied = new List<string>();
        Set(Native.RLIMIT_CORE, 0, "core=0", applied);
        Set(Native.RLIMIT_FSIZE, 1UL << 20, "fsize=1MiB", applied);
        // Descriptors: the runtime keeps some open per loaded assembly; leave room for the script's references.
        var open = Directory.GetFiles("/proc/self/fd").Length;
        Set(Native.RLIMIT_NOFILE, (ulong)(open + 128), $"nofile={open + 128}", applied);
        Set(Native.RLIMIT_NPROC, 512, "nproc=512", applied);
        // Address space: what the runtime has mapped now (code, GC reservation) plus the heap budget and room for
        // thread stacks and JIT code. Data: private writable mappings, the heap budget plus the same room.
        var mapped = VmSizeBytes();
        var room = 1UL << 30;
        if (mapped > 0) Set(Native.RLIMIT_AS, mapped + (ulong)heapBytes + room, $"as={(mapped + (ulong)heapBytes + room) >> 20}MiB", applied);
        var data = VmDataBytes();
        if (data > 0) Set(Native.RLIMIT_DATA, data + (ulong)heapBytes + room, $"data={(data + (ulong)heapBytes + room) >> 20}MiB", applied);
        if (Native.prctl(Native.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) applied.Add("no_new_privs");
        return applied;
    }

    /// <summary>Lets the coming test case use <paramref name="seconds"/> more CPU before SIGXCPU.</summary>
    public static void SetCpuBudget(double seconds)
    {
        var soft = (ulong)Math.Ceiling(Native.CpuSeconds() + seconds);
        var limit = new Native.RLimit { Current = soft, Max = soft + 2 };
        if (Native.setrlimit(Native.RLIMIT_CPU, ref limit) != 0 && Native.getrlimit(Native.RLIMIT_CPU, out var old) == 0)
        {
            // Without privilege the hard limit cannot rise again: keep it and move only the soft one.
            limit = new Native.RLimit { Current = Math.Min(soft, old.Max), Max = old.Max };
            Native.setrlimit(Native.RLIMIT_CPU, ref limit);
        }
    }

    public static string? NetworkNamespace()
    {
        var buffer = new byte[256];
        var length = Native.readlink("/proc/self/ns/net", buffer, buffer.Length);
        return length > 0 ? System.Text.Encoding.ASCII.GetString(buffer, 0, (int)length) : null;
    }

    /// <summary>Drops root to nobody; returns what happened (nothing when not root).</summary>
    public static string? DropPrivileges()
    {
        if (Native.geteuid() != 0) return null;
        if (Native.setgroups(0, 0) != 0) return "uid drop failed (setgroups): " + Native.LastError();
        if (Native.setresgid(Nobody, Nobody, Nobody) != 0) return "uid drop failed (setgid): " + Native.LastError();
        if (Native.setresuid(Nobody, Nobody, Nobody) != 0) return "uid drop failed (setuid): " + Native.LastError();
        return Native.setresuid(0, 0, 0) == 0 ? "uid drop failed (root regained)" : "uid=nobody";
    }

    private static void Set(int resource, ulong value, string name, List<string> applied)
    {
        var limit = new Native.RLimit { Current = value, Max = value };
        applied.Add(Native.setrlimit(resource, ref limit) == 0 ? name : $"{name} failed: {Native.LastError()}");
    }

    private static ulong VmSizeBytes() => StatusKiB("VmSize:") * 1024;

    private static ulong VmDataBytes() => StatusKiB("VmData:") * 1024;

    private static ulong StatusKiB(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return ulong.Parse(line[key.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        return 0;
    }

    /// <summary>Threads that run untrusted code after a program ended: our own guarded thread still alive, or a
    /// dedicated thread of a LongRunning task (OS names are cut to 15 characters). The runtime's own threads
    /// (tiering, timers, finalizer) come and go and do not count.</summary>
    public static int LeftoverThreads()
    {
        var count = 0;
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            string name;
            try { name = File.ReadAllText(Path.Combine(task, "comm")).Trim(); }
            catch (IOException) { continue; }
            if (name.StartsWith("sandbox-run", StringComparison.Ordinal) || name.StartsWith(".NET Long Run", StringComparison.Ordinal))
                count++;
        }
        return count;
    }
}
