// P/Invoke binding of the Open MPI C API (libmpi.so.40, Open MPI 4.x/5.x ABI): only the calls PostTrain uses.
// Open MPI's handles are pointers: MPI_COMM_WORLD is the address of the exported global `ompi_mpi_comm_world`,
// MPI_FLOAT of `ompi_mpi_float`, MPI_SUM of `ompi_mpi_op_sum`; MPI_IN_PLACE is (void*)1 and MPI_STATUS_IGNORE is
// NULL. Loaded only when a process is started as one rank of several (see DistEnv); a single process never
// touches it. The library is opened RTLD_GLOBAL so Open MPI's own plug-ins resolve its symbols.
using System.Runtime.InteropServices;

namespace PostTrain.Core.Distributed;

internal static unsafe class MpiNative
{
    public const string Library = "libmpi.so.40";
    public const int Success = 0;
    public const int ThreadSerialized = 2;
    public static readonly IntPtr InPlace = 1;

    private static IntPtr handle;

    /// <summary>Opens libmpi (RTLD_NOW | RTLD_GLOBAL) or throws naming what to install.</summary>
    public static void Load()
    {
        if (handle != IntPtr.Zero) return;
        handle = dlopen(Library, 0x2 | 0x100);
        if (handle == IntPtr.Zero)
            throw new DllNotFoundException($"{Library} could not be loaded ({Marshal.PtrToStringAnsi(dlerror())}): distributed CPU " +
                "training needs Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev).");
    }

    /// <summary>Address of an exported Open MPI global (a predefined handle such as ompi_mpi_comm_world).</summary>
    public static IntPtr Global(string symbol) =>
        NativeLibrary.TryGetExport(handle, symbol, out var p) ? p
            : throw new EntryPointNotFoundException($"{Library} does not export '{symbol}': PostTrain's MPI binding needs Open MPI 4 or 5.");

    [DllImport("libdl.so.2")] private static extern IntPtr dlopen(string file, int mode);
    [DllImport("libdl.so.2")] private static extern IntPtr dlerror();

    [DllImport(Library)] public static extern int MPI_Initialized(out int flag);
    [DllImport(Library)] public static extern int MPI_Finalized(out int flag);
    [DllImport(Library)] public static extern int MPI_Init_thread(IntPtr argc, IntPtr argv, int required, out int provided);
    [DllImport(Library)] public static extern int MPI_Finalize();
    [DllImport(Library)] public static extern int MPI_Abort(IntPtr comm, int code);
    [DllImport(Library)] public static extern int MPI_Comm_rank(IntPtr comm, out int rank);
    [DllImport(Library)] public static extern int MPI_Comm_size(IntPtr comm, out int size);
    [DllImport(Library)] public static extern int MPI_Comm_split(IntPtr comm, int color, int key, out IntPtr newComm);
    [DllImport(Library)] public static extern int MPI_Comm_free(ref IntPtr comm);
    [DllImport(Library)] public static extern int MPI_Test(ref IntPtr request, out int flag, IntPtr status);
    [DllImport(Library)] public static extern int MPI_Ibarrier(IntPtr comm, out IntPtr request);
    [DllImport(Library)] public static extern int MPI_Iallreduce(IntPtr send, IntPtr recv, int count, IntPtr type, IntPtr op, IntPtr comm, out IntPtr request);
    [DllImport(Library)] public static extern int MPI_Ibcast(IntPtr buffer, int count, IntPtr type, int root, IntPtr comm, out IntPtr request);
    [DllImport(Library)] public static extern int MPI_Iallgatherv(IntPtr send, int sendCount, IntPtr sendType, IntPtr recv, int* recvCounts, int* displs, IntPtr recvType, IntPtr comm, out IntPtr request);
    [DllImport(Library)] public static extern int MPI_Ireduce_scatter(IntPtr send, IntPtr recv, int* recvCounts, IntPtr type, IntPtr op, IntPtr comm, out IntPtr request);
    [DllImport(Library)] public static extern int MPI_Ialltoallv(IntPtr send, int* sendCounts, int* sendDispls, IntPtr sendType, IntPtr recv, int* recvCounts, int* recvDispls, IntPtr recvType, IntPtr comm, out IntPtr request);
}
