// libc calls the worker needs to confine itself (Linux x86-64/arm64 numbering).
using System.Runtime.InteropServices;

namespace PostTrain.Sandbox.Worker;

internal static class Native
{
    public const int RLIMIT_CPU = 0, RLIMIT_FSIZE = 1, RLIMIT_DATA = 2, RLIMIT_CORE = 4, RLIMIT_NPROC = 6,
        RLIMIT_NOFILE = 7, RLIMIT_AS = 9;
    public const int PR_SET_DUMPABLE = 4, PR_SET_NO_NEW_PRIVS = 38;
    public const int O_RDWR = 2, F_SETFD = 2, FD_CLOEXEC = 1;
    public const int RUSAGE_SELF = 0;

    [StructLayout(LayoutKind.Sequential)]
    public struct RLimit { public ulong Current; public ulong Max; }

    [StructLayout(LayoutKind.Sequential)]
    public struct TimeVal { public long Seconds; public long Microseconds; }

    [StructLayout(LayoutKind.Sequential)]
    public struct RUsage
    {
        public TimeVal UserTime, SystemTime;
        public long MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NVcsw, NIvcsw;
    }

    [DllImport("libc", SetLastError = true)] public static extern int setrlimit(int resource, ref RLimit limit);
    [DllImport("libc", SetLastError = true)] public static extern int getrlimit(int resource, out RLimit limit);
    [DllImport("libc", SetLastError = true)] public static extern int getrusage(int who, out RUsage usage);
    [DllImport("libc", SetLastError = true)] public static extern int prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
    [DllImport("libc", SetLastError = true)] public static extern int dup(int fd);
    [DllImport("libc", SetLastError = true)] public static extern int dup2(int oldFd, int newFd);
    [DllImport("libc", SetLastError = true)] public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
    [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] public static extern int fcntl(int fd, int cmd, int arg);
    [DllImport("libc", SetLastError = true)] public static extern int setgroups(nint size, nint list);
    [DllImport("libc", SetLastError = true)] public static extern int setresgid(uint rgid, uint egid, uint sgid);
    [DllImport("libc", SetLastError = true)] public static extern int setresuid(uint ruid, uint euid, uint suid);
    [DllImport("libc", SetLastError = true)] public static extern nint readlink([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer, nint size);
    [DllImport("libc")] public static extern uint geteuid();
    [DllImport("libc")] public static extern uint getuid();

    public static string LastError() => Marshal.GetLastPInvokeErrorMessage();

    /// <summary>CPU seconds (user + system) this process has used.</summary>
    public static double CpuSeconds()
    {
        if (getrusage(RUSAGE_SELF, out var u) != 0) return 0;
        return u.UserTime.Seconds + u.UserTime.Microseconds / 1e6 + u.SystemTime.Seconds + u.SystemTime.Microseconds / 1e6;
    }
}
