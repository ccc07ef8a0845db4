// P/Invoke binding of NCCL's C API (libnccl.so.2, NCCL 2.12+): only the calls PostTrain uses. The library comes with
// the user's CUDA or PyTorch install; POSTTRAIN_NCCL_LIB names another file. ncclUniqueId is a 128-byte struct passed
// by value; communicators, streams and buffers are pointers. Loaded only when a CUDA run of several ranks asks for the
// NCCL engine (DistBackend), never on the CPU.
using System.Runtime.InteropServices;

namespace PostTrain.Core.Distributed;

[StructLayout(LayoutKind.Sequential, Size = 128)]
internal unsafe struct NcclUniqueId
{
    public fixed byte Internal[128];
}

internal enum NcclDataType { Int8 = 0, Uint8 = 1, Int32 = 2, Uint32 = 3, Int64 = 4, Uint64 = 5, Float16 = 6, Float32 = 7, Float64 = 8, Bfloat16 = 9 }

internal enum NcclRedOp { Sum = 0, Prod = 1, Max = 2, Min = 3, Avg = 4 }

internal static unsafe class NcclNative
{
    public const string LibraryVariable = "POSTTRAIN_NCCL_LIB";
    public const int Success = 0;
    public const int InProgress = 7;

    private static readonly Lock Gate = new();
    private static IntPtr handle;
    private static string? loadError;

    /// <summary>Whether libnccl can be loaded on this machine (the reason is in <see cref="LoadError"/> if not).</summary>
    public static bool TryLoad()
    {
        lock (Gate)
        {
            if (handle != IntPtr.Zero) return true;
            if (loadError is not null) return false;
            string? custom = Environment.GetEnvironmentVariable(LibraryVariable);
            var candidates = custom is not null ? new[] { custom } : new[] { "libnccl.so.2", "libnccl.so" };
            foreach (var name in candidates)
                if (NativeLibrary.TryLoad(name, out handle)) break;
            if (handle == IntPtr.Zero)
            {
                loadError = $"{string.Join(" / ", candidates)} could not be loaded: the NCCL engine needs NCCL from the CUDA or PyTorch " +
                    $"install (put its lib folder on LD_LIBRARY_PATH or set {LibraryVariable})";
                return false;
            }
            Bind();
            return true;
        }
    }

    public static string LoadError => loadError ?? "";

    public static void Load()
    {
        if (!TryLoad()) throw new DllNotFoundException(LoadError);
    }

    public static string Version()
    {
        int v;
        Check(getVersionFn(&v), "ncclGetVersion");
        return v >= 10000 ? $"{v / 10000}.{v / 100 % 100}.{v % 100}" : $"{v / 1000}.{v / 100 % 10}.{v % 100}";
    }

    public static string ErrorString(int rc) => Marshal.PtrToStringAnsi(getErrorString(rc)) ?? $"error {rc}";

    public static void Check(int rc, string call)
    {
        if (rc != Success) throw new InvalidOperationException($"{call} failed: NCCL error {rc} ({ErrorString(rc)})");
    }

    // Function pointers bound by name once the library is open (NCCL ships no import library to link against).
    private static delegate* unmanaged<int*, int> getVersionFn;
    private static delegate* unmanaged<int, IntPtr> getErrorString;
    public static delegate* unmanaged<NcclUniqueId*, int> GetUniqueId;
    public static delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int> CommInitRank;
    public static delegate* unmanaged<IntPtr, int> CommDestroy;
    public static delegate* unmanaged<IntPtr, int> CommAbort;
    public static delegate* unmanaged<IntPtr, int*, int> CommGetAsyncError;
    public static delegate* unmanaged<IntPtr, IntPtr, nuint, NcclDataType, NcclRedOp, IntPtr, IntPtr, int> AllReduce;
    public static delegate* unmanaged<IntPtr, IntPtr, nuint, NcclDataType, int, IntPtr, IntPtr, int> Broadcast;
    public static delegate* unmanaged<IntPtr, IntPtr, nuint, NcclDataType, NcclRedOp, int, IntPtr, IntPtr, int> Reduce;
    public static delegate* unmanaged<IntPtr, IntPtr, nuint, NcclDataType, NcclRedOp, IntPtr, IntPtr, int> ReduceScatter;
    public static delegate* unmanaged<IntPtr, nuint, NcclDataType, int, IntPtr, IntPtr, int> Send;
    public static delegate* unmanaged<IntPtr, nuint, NcclDataType, int, IntPtr, IntPtr, int> Recv;
    public static delegate* unmanaged<int> GroupStart;
    public static delegate* unmanaged<int> GroupEnd;

    private static void Bind()
    {
        getVersionFn = (delegate* unmanaged<int*, int>)Export("ncclGetVersion");
        getErrorString = (delegate* unmanaged<int, IntPtr>)Export("ncclGetErrorString");
        GetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Export("ncclGetUniqueId");
        CommInitRank = (delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int>)Export("ncclCommInitRank");
        CommDestroy = (delegate* unmanaged<IntPtr, int>)Export("ncclCommDestroy");
        CommAbort = (delegate* unmanaged<IntPtr, int>)Export("ncclCommAbort");
        CommGetAsyncError = (delegate* unmanaged<IntPtr, int*, int>)Export("ncclCommGetAsyncError");
        AllReduce = (delegate* unmanaged<IntPtr, IntPtr, nuint, NcclDataType, NcclRedOp, IntPtr, IntPtr, int>)Export("ncclAllReduce");
        Broadcast = (delegate* unmanaged<IntPtr, IntPtr, nuint, NcclDataType, int, IntPtr, IntPtr, int>)Export("ncclBroadcast");
        Reduce = (delegate* unmanaged<IntPtr, IntPtr, nuint, NcclDataType, NcclRedOp, int, IntPtr, IntPtr, int>)Export("ncclReduce");
        ReduceScatter = (delegate* unmanaged<IntPtr, IntPtr, nuint, NcclDataType, NcclRedOp, IntPtr, IntPtr, int>)Export("ncclReduceScatter");
        Send = (delegate* unmanaged<IntPtr, nuint, NcclDataType, int, IntPtr, IntPtr, int>)Export("ncclSend");
        Recv = (delegate* unmanaged<IntPtr, nuint, NcclDataType, int, IntPtr, IntPtr, int>)Export("ncclRecv");
        GroupStart = (delegate* unmanaged<int>)Export("ncclGroupStart");
        GroupEnd = (delegate* unmanaged<int>)Export("ncclGroupEnd");
    }

    private static IntPtr Export(string name) => NativeLibrary.TryGetExport(handle, name, out var p) ? p
        : throw new EntryPointNotFoundException($"the loaded NCCL does not export '{name}': PostTrain needs NCCL 2.12 or newer");
}
