// The entry point: runs a program against its tests in pooled worker processes and returns verdicts and a score.
// C# is compiled and policy-checked here first (CSharpScriptCompiler); then a worker for the language is taken
// from the pool (or started), the program is sent with a fresh nonce, and verdicts come back per case. A worker
// that stops mid-program (a case that would not end, a crash) is replaced and the remaining cases go to a fresh
// one, at most MaxRestarts times. Workers are replaced after JavaScriptRunsPerWorker / CSharpRunsPerWorker
// programs, after any limit hit, and whenever they ask to be. A worker that nears its last program starts its
// successor in the background (SpareLead programs ahead), so the retirement finds the successor warm and no program
// waits for a process start; a worker retired early (a limit hit, a crash) is replaced in the background.
// Dispose waits for those background retirements and starts (a hang guard bounds the wait) and then ends every idle
// worker, so each worker's scratch folder is gone afterwards; pools still open when the process exits (the
// never-disposed Shared pool among them) are disposed from AppDomain.ProcessExit, so no run leaves empty
// posttrain-sandbox-* folders in TMPDIR.
// Idle workers are taken most-used first (IdleWorkers), so a successor waits warm until its predecessor has retired.
// Per-program cost: identical C# programs compile once (CompileCache: the policy check and emit are a pure function of
// the code, so the emitted bytes are reused; each run still loads them into a fresh context in a worker), all of a
// program's cases travel in one request, and Warm starts a language's workers ahead of the first program.
using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace PostTrain.Rewards.Sandbox;

public sealed class SandboxPool : IDisposable
{
    /// <summary>Fresh workers a single program may use after the first one stops mid-program.</summary>
    public const int MaxRestarts = 2;

    private static readonly Lazy<SandboxPool> SharedPool = new(() => new SandboxPool(SandboxLimits.Default));
    private static readonly ConcurrentDictionary<SandboxPool, byte> Open = new();
    private static int _exitHook;

    /// <summary>How long Dispose waits for background work (a worker start takes seconds on a busy machine).</summary>
    private static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(60);

    private readonly SemaphoreSlim _slots;
    private readonly SemaphoreSlim _compileSlots = new(System.Math.Max(1, Environment.ProcessorCount));
    private readonly CompileCache _compiled = new();
    private readonly ConcurrentDictionary<string, IdleWorkers> _idle = new();
    private readonly ConcurrentDictionary<Task, byte> _background = new();
    private readonly string? _scratchRoot;
    private readonly ConcurrentDictionary<string, System.Runtime.CompilerServices.StrongBox<int>> _starting = new();   // per language
    private IReadOnlyList<string> _isolation = [];
    private long _started;
    private long _startedOnDemand;
    private volatile bool _disposed;

    /// <param name="limits">Per-program limits (default: SandboxLimits.Default).</param>
    /// <param name="scratchRoot">Where workers' scratch folders go (default: the temp folder).</param>
    public SandboxPool(SandboxLimits? limits = null, string? scratchRoot = null)
    {
        Limits = limits ?? SandboxLimits.Default;
        Limits.Validate();
        _slots = new SemaphoreSlim(Limits.MaxWorkers);
        _scratchRoot = scratchRoot;
        Open[this] = 0;
        if (Interlocked.Exchange(ref _exitHook, 1) == 0)
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                foreach (var pool in Open.Keys) pool.Dispose();
            };
    }

    /// <summary>A process-wide pool with default limits (disposed when the process exits).</summary>
    public static SandboxPool Shared => SharedPool.Value;

    public SandboxLimits Limits { get; }

    /// <summary>The OS measures the most recently started worker reported (rlimits, uid, network namespace).</summary>
    public IReadOnlyList<string> Isolation => Volatile.Read(ref _isolation);

    /// <summary>C# compilations served from the cache of identical programs (for tests and benchmarks).</summary>
    public long CompileCacheHits => _compiled.Hits;

    /// <summary>Worker processes started so far (all languages; for tests and benchmarks).</summary>
    public long WorkersStarted => Interlocked.Read(ref _started);

    /// <summary>Of those, the ones a program had to wait for: no idle worker was there when it asked.</summary>
    public long WorkersStartedOnDemand => Interlocked.Read(ref _startedOnDemand);

    /// <summary>Waits until no worker start or retirement runs in the background (tests).</summary>
    internal async Task SettleAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (!_background.IsEmpty) await Task.WhenAll(_background.Keys).WaitAsync(deadline.Token).ConfigureAwait(false);
    }

    /// <summary>Starts workers for <paramref name="language"/> in the background until <paramref name="count"/>
    /// (default: MaxWorkers) are idle or starting, so the first programs do not wait for process starts.</summary>
    public void Warm(string language, int? count = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var canonical = CodeExtractor.Canonical(language)
            ?? throw new ArgumentException($"unknown language '{language}' (javascript or csharp)", nameof(language));
        var target = System.Math.Min(count ?? Limits.MaxWorkers, Limits.MaxWorkers);
        for (var i = 0; i < target; i++) Track(ReplenishAsync(canonical));
    }

    public async Task<ExecutionResult> RunAsync(CodeRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var language = CodeExtractor.Canonical(request.Language)
            ?? throw new ArgumentException($"unknown language '{request.Language}' (javascript or csharp)", nameof(request));
        var spec = request.Tests ?? throw new ArgumentException("request has no tests", nameof(request));
        if (string.IsNullOrWhiteSpace(request.Code)) return ExecutionResult.Same(spec, Verdict.CompileError, "no code");
        if (request.Code.Length > Limits.MaxCodeChars)
            return ExecutionResult.Same(spec, Verdict.CompileError, $"code longer than {Limits.MaxCodeChars} characters");

        CompiledScript? script = null;
        if (language == "csharp")
        {
            var (compiled, failure) = await CompileAsync(request.Code, ct).ConfigureAwait(false);
            if (failure is not null) return ExecutionResult.Same(spec, failure.Verdict, failure.Message);
            script = compiled;
        }

        var cases = spec.Cases.Select(c => spec.IsFunctionMode ? new WorkerCase(c.ArgsJson, null) : new WorkerCase(null, c.Stdin)).ToArray();
        var verdicts = new TestVerdict?[cases.Length];
        await _slots.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var next = 0;
            for (var attempt = 0; next < cases.Length; attempt++)
            {
                WorkerProcess worker;
                try { worker = await RentAsync(language, ct).ConfigureAwait(false); }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Fill(verdicts, next, Verdict.SandboxError, "sandbox worker failed to start: " + e.Message);
                    break;
                }
                var nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
                var workerRequest = new WorkerRequest(nonce, language, spec.Entry, language == "javascript" ? request.Code : null,
                    script?.Assembly, script?.ScriptClass, cases[next..], Limits);
                WorkerReport report;
                try { report = await worker.RunAsync(workerRequest, ct).ConfigureAwait(false); }
                catch
                {
                    worker.Dispose();
                    throw;
                }
                foreach (var frame in report.Cases)
                    verdicts[next + frame.Index] = Judge(spec, next + frame.Index, frame);
                if (report.Ended)
                {
                    Return(worker, report.Recycle);
                    break;
                }
                Retire(worker);
                var stopped = next + report.Cases.Count;
                if (report.StopVerdict is { } verdict && stopped < cases.Length)
                    verdicts[stopped++] = new TestVerdict(stopped - 1, verdict, report.StopReason);
                if (stopped == next)
                {
                    Fill(verdicts, next, Verdict.SandboxError, "worker stopped without answering");
                    break;
                }
                next = stopped;
                if (attempt >= MaxRestarts && next < cases.Length)
                {
                    var last = verdicts[next - 1]!;
                    Fill(verdicts, next, last.Verdict, $"not run: the worker stopped {attempt + 1} times ({last.Detail})");
                    break;
                }
            }
        }
        finally
        {
            _slots.Release();
        }
        var tests = verdicts.Select((v, i) => v ?? new TestVerdict(i, Verdict.SandboxError, "no verdict")).ToArray();
        var passed = tests.Count(t => t.Verdict == Verdict.Accepted);
        var score = spec.AllOrNothing ? (passed == tests.Length ? 1.0 : 0.0) : (double)passed / tests.Length;
        var programError = tests.All(t => t.Verdict is Verdict.CompileError or Verdict.SandboxError)
            ? tests[0].Detail : null;
        return new ExecutionResult(tests, score, programError);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Open.TryRemove(this, out _);
        // Late starts dispose themselves once they see _disposed; retirements end their worker.
        try { Task.WaitAll([.. _background.Keys], DisposeWait); }
        catch (AggregateException) { }   // a failed start or disposal: nothing more to clean up for it
        foreach (var bag in _idle.Values)
            while (bag.TryTake(out var worker)) worker.Dispose();
    }

    private Task<(CompiledScript?, CompileFailure?)> CompileAsync(string code, CancellationToken ct) =>
        // The shared compilation is not cancelled by one caller (the 20 s deadline bounds it); each caller stops waiting
        // on its own token.
        _compiled.GetOrCompile(code, () => CompileUncachedAsync(code, CancellationToken.None)).WaitAsync(ct);

    private async Task<(CompiledScript?, CompileFailure?)> CompileUncachedAsync(string code, CancellationToken ct)
    {
        await _compileSlots.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(20));
            return await Task.Run(() => CSharpScriptCompiler.Compile(code, deadline.Token), deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return (null, new CompileFailure(Verdict.CompileError, "compilation took longer than 20 s"));
        }
        finally
        {
            _compileSlots.Release();
        }
    }

    private static TestVerdict Judge(TestSpec spec, int index, WorkerFrame frame)
    {
        var testCase = spec.Cases[index];
        return frame.Status switch
        {
            RunStatus.Completed when spec.IsFunctionMode =>
                OutputComparer.JsonEquals(frame.Output ?? "null", testCase.ExpectedJson!, spec.Tolerance)
                    ? new TestVerdict(index, Verdict.Accepted, null, frame.Output)
                    : new TestVerdict(index, Verdict.WrongAnswer, $"expected {Clip(testCase.ExpectedJson!)}, got {Clip(frame.Output ?? "null")}", frame.Output),
            RunStatus.Completed =>
                OutputComparer.StdoutEquals(frame.Output ?? "", testCase.Stdout!)
                    ? new TestVerdict(index, Verdict.Accepted, null, frame.Output)
                    : new TestVerdict(index, Verdict.WrongAnswer, $"expected {Clip(testCase.Stdout!)}, got {Clip(frame.Output ?? "")}", frame.Output),
            RunStatus.CompileError => new TestVerdict(index, Verdict.CompileError, frame.Error),
            RunStatus.RuntimeError => new TestVerdict(index, Verdict.RuntimeError, frame.Error),
            RunStatus.TimeLimit => new TestVerdict(index, Verdict.TimeLimit, frame.Error),
            RunStatus.MemoryLimit => new TestVerdict(index, Verdict.MemoryLimit, frame.Error),
            RunStatus.OutputLimit => new TestVerdict(index, Verdict.OutputLimit, frame.Error),
            _ => new TestVerdict(index, Verdict.SandboxError, frame.Error),
        };
    }

    private static void Fill(TestVerdict?[] verdicts, int from, Verdict verdict, string detail)
    {
        for (var i = from; i < verdicts.Length; i++) verdicts[i] ??= new TestVerdict(i, verdict, detail);
    }

    private static string Clip(string text) => text.Length <= 200 ? text : text[..200] + "...";

    private async Task<WorkerProcess> RentAsync(string language, CancellationToken ct)
    {
        var bag = _idle.GetOrAdd(language, _ => new IdleWorkers());
        while (bag.TryTake(out var idle))
        {
            if (!idle.HasExited) return idle;
            idle.Dispose();
        }
        var worker = await WorkerProcess.StartAsync(language, Limits, _scratchRoot, ct).ConfigureAwait(false);
        Volatile.Write(ref _isolation, worker.Isolation);
        Interlocked.Increment(ref _started);
        Interlocked.Increment(ref _startedOnDemand);
        return worker;
    }

    /// <summary>How many programs before a worker's last one its successor is started: a quarter of its runs (at least
    /// one), so a start (0.3-1 s) overlaps the worker's last programs.</summary>
    internal static int SpareLead(int runsPerWorker) => System.Math.Max(1, runsPerWorker / 4);

    private void Return(WorkerProcess worker, bool recycle)
    {
        var perWorker = worker.Language == "csharp" ? Limits.CSharpRunsPerWorker : Limits.JavaScriptRunsPerWorker;
        if (_disposed || recycle || worker.Runs >= perWorker || worker.HasExited)
        {
            Retire(worker);
            return;
        }
        if (!worker.SuccessorStarted && worker.Runs >= perWorker - SpareLead(perWorker))
        {
            worker.SuccessorStarted = true;
            Track(StartSpareAsync(worker.Language));
        }
        _idle.GetOrAdd(worker.Language, _ => new IdleWorkers()).Add(worker);
    }

    /// <summary>Disposes a worker off the caller's path and, unless it already started its successor, starts a
    /// replacement in the background.</summary>
    private void Retire(WorkerProcess worker)
    {
        Track(Task.Run(worker.Dispose));
        if (!_disposed && !worker.SuccessorStarted) Track(ReplenishAsync(worker.Language));
    }

    private void Track(Task task)
    {
        _background[task] = 0;
        task.ContinueWith(t => _background.TryRemove(t, out _), TaskScheduler.Default);
    }

    private async Task ReplenishAsync(string language)
    {
        var bag = _idle.GetOrAdd(language, _ => new IdleWorkers());
        var starting = _starting.GetOrAdd(language, _ => new(0));
        if (bag.Count + Interlocked.Increment(ref starting.Value) > Limits.MaxWorkers)
        {
            Interlocked.Decrement(ref starting.Value);
            return;
        }
        try { await StartIdleAsync(language, bag).ConfigureAwait(false); }
        finally { Interlocked.Decrement(ref starting.Value); }
    }

    /// <summary>Starts the successor of a worker near its last program. Not capped by MaxWorkers: each worker starts at
    /// most one, and it stands in for that worker, which then retires without a replacement of its own.</summary>
    private Task StartSpareAsync(string language) => StartIdleAsync(language, _idle.GetOrAdd(language, _ => new IdleWorkers()));

    private async Task StartIdleAsync(string language, IdleWorkers bag)
    {
        try
        {
            var worker = await WorkerProcess.StartAsync(language, Limits, _scratchRoot, CancellationToken.None).ConfigureAwait(false);
            Volatile.Write(ref _isolation, worker.Isolation);
            Interlocked.Increment(ref _started);
            bag.Add(worker);
            if (_disposed)
                while (bag.TryTake(out var late)) late.Dispose();
        }
        catch (Exception)
        {
            // A failing start shows up again, with its message, on the next RentAsync.
        }
    }
}

/// <summary>A language's idle workers. A program takes the one that has run the most programs, so a worker near its last
/// program finishes its runs while its already started successor waits, rather than the two taking turns.</summary>
internal sealed class IdleWorkers
{
    private readonly List<WorkerProcess> _workers = [];

    public int Count
    {
        get { lock (_workers) return _workers.Count; }
    }

    public void Add(WorkerProcess worker)
    {
        lock (_workers) _workers.Add(worker);
    }

    /// <summary>Removes and returns the worker with the most runs (false when there is none).</summary>
    public bool TryTake(out WorkerProcess worker)
    {
        lock (_workers)
        {
            worker = null!;
            if (_workers.Count == 0) return false;
            int best = 0;
            for (int i = 1; i < _workers.Count; i++)
                if (_workers[i].Runs > _workers[best].Runs) best = i;
            worker = _workers[best];
            _workers.RemoveAt(best);
            return true;
        }
    }
}
