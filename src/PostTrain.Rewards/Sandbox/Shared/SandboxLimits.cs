// Limits for one sandboxed program run, shared by the host (SandboxPool) and the worker process.
// Time is wall-clock per test case (the worker also moves RLIMIT_CPU as a backstop); memory is the live
// heap of the worker (GCHeapHardLimit) plus, for JavaScript, Jint's per-test allocation budget.
// Simplification: one set of limits per pool, because the heap limit is fixed when a worker starts.
namespace PostTrain.Rewards.Sandbox;

public sealed record SandboxLimits
{
    /// <summary>Wall time one test case may run (Jint timeout, worker watchdog).</summary>
    public TimeSpan TimePerTest { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Extra wall time the host allows a worker beyond the per-test budget before it kills it
    /// (process start, assembly load, a busy machine).</summary>
    public TimeSpan HostGrace { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Live managed heap of a worker for the untrusted program (the worker adds its own baseline).</summary>
    public long MemoryBytes { get; init; } = 256L << 20;

    /// <summary>Bytes a JavaScript test may allocate in total (Jint LimitMemory counts allocations, not live bytes).</summary>
    public long JavaScriptAllocationBytes { get; init; } = 2L << 30;

    /// <summary>Characters of program output (stdout, console.log) kept per test; more is OutputLimit.</summary>
    public int MaxOutputChars { get; init; } = 64 * 1024;

    public int MaxStatements { get; init; } = 100_000_000;

    public int MaxRecursionDepth { get; init; } = 2_000;

    public uint MaxArraySize { get; init; } = 10_000_000;

    public TimeSpan RegexTimeout { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Source characters accepted; longer code is rejected before it runs.</summary>
    public int MaxCodeChars { get; init; } = 200_000;

    /// <summary>Parallel worker processes (and programs run at once).</summary>
    public int MaxWorkers { get; init; } = System.Math.Max(1, Environment.ProcessorCount);

    /// <summary>JavaScript programs one worker runs before it is replaced (always replaced after a limit hit). Every test
    /// case already runs in a fresh Jint engine with no CLR access, so this bounds memory creep, not what a program can
    /// see. A fresh worker costs about 1 s of CPU (runtime start, Jint's first engine, its code compiled again), so at
    /// 200 that cost was larger than the programs' own: one worker serving small programs back to back ran 169
    /// programs/s at 200 and 402/s at 1,000 (2-core machine, same run). Since a JavaScript worker runs every case on one
    /// reused thread (GuardedThread.Reused), the replacement is most of what is left: 695-916 programs/s at 1,000 and
    /// 1,542-1,888/s at 5,000 (`benchmarks/Sandbox -- 4000 2 latency`, 2-core machine, alternating runs).</summary>
    public int JavaScriptRunsPerWorker { get; init; } = 5_000;

    /// <summary>C# programs one worker runs before it is replaced. Script assemblies are loaded into a collectible
    /// context and the worker is replaced whenever a run leaves threads or pending work behind, hits a limit or
    /// fails; 1 = a fresh process for every C# program (safest, slowest).</summary>
    public int CSharpRunsPerWorker { get; init; } = 16;

    /// <summary>Stack of the thread that runs untrusted code.</summary>
    public int StackBytes { get; init; } = 8 << 20;

    public static SandboxLimits Default { get; } = new();

    /// <summary>The Jint limits of one JavaScript test case (no eval / new Function).</summary>
    public PostTrain.Rewards.Policy.JavaScriptLimits JavaScript => new()
    {
        Timeout = TimePerTest,
        MaxStatements = MaxStatements,
        MemoryBytes = JavaScriptAllocationBytes,
        MaxRecursion = MaxRecursionDepth,
        MaxArraySize = MaxArraySize,
        RegexTimeout = RegexTimeout,
        AllowEval = false,
    };

    internal void Validate()
    {
        if (TimePerTest <= TimeSpan.Zero) throw new ArgumentException("SandboxLimits.TimePerTest must be positive.");
        if (MemoryBytes < 16L << 20) throw new ArgumentException("SandboxLimits.MemoryBytes must be at least 16 MiB.");
        if (MaxOutputChars <= 0) throw new ArgumentException("SandboxLimits.MaxOutputChars must be positive.");
        if (MaxWorkers <= 0) throw new ArgumentException("SandboxLimits.MaxWorkers must be positive.");
        if (JavaScriptRunsPerWorker <= 0 || CSharpRunsPerWorker <= 0)
            throw new ArgumentException("SandboxLimits runs per worker must be positive.");
    }
}
