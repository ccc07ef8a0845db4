// Caching identical programs: a C# program sent again is not compiled again (the pool counts cache hits), yet every run
// starts from fresh state (static fields, JavaScript globals), a forbidden program stays forbidden when served from the
// cache, and Warm starts workers that then serve programs; a worker near its last program starts its successor ahead.
// Own pools, so the hit and start counts are this test's alone.
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

public sealed class SandboxCacheTests
{
    [Fact]
    public async Task Identical_csharp_programs_compile_once_and_still_run_from_fresh_state()
    {
        using var pool = new SandboxPool(TestSandbox.Limits with { MaxWorkers = 2 });
        var spec = TestSandbox.Function("next", ("[]", "1"), ("[]", "1"));
        const string counter = "static int k;\nstatic int Next() => ++k;";
        // Roslyn's first compilation in a process is slow (JIT) and on a loaded machine may pass the 20 s compile
        // deadline; warm it with another program first (a timed-out compilation is not cached, so this only helps).
        await pool.RunAsync(new CodeRequest("csharp", "static int Next() => 1;", spec), CancellationToken.None);
        var runs = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => pool.RunAsync(new CodeRequest("csharp", counter, spec), CancellationToken.None)));
        // The static field starts at 0 in every run (a fresh load of the cached bytes): case 1 sees 1. Case 2 of the same
        // run shares the script's statics (one load per program), so it sees 2: a wrong answer, in every run alike.
        Assert.All(runs, r => Assert.Equal([Verdict.Accepted, Verdict.WrongAnswer], r.Tests.Select(t => t.Verdict)));
        Assert.Equal(3, pool.CompileCacheHits);

        var other = await pool.RunAsync(new CodeRequest("csharp", counter + "\n// another program", spec), CancellationToken.None);
        Assert.Equal(Verdict.Accepted, other.Tests[0].Verdict);
        Assert.Equal(3, pool.CompileCacheHits);

        const string forbidden = "static int Next() { System.IO.File.WriteAllText(\"x\", \"y\"); return 1; }";
        for (var i = 0; i < 2; i++)
        {
            var r = await pool.RunAsync(new CodeRequest("csharp", forbidden, spec), CancellationToken.None);
            Assert.All(r.Tests, t => Assert.Equal(Verdict.Forbidden, t.Verdict));
        }
        Assert.Equal(4, pool.CompileCacheHits);
    }

    [Fact]
    public async Task A_repeated_javascript_program_gets_fresh_globals_and_warm_workers_serve_it()
    {
        using var pool = new SandboxPool(TestSandbox.Limits with { MaxWorkers = 1 });
        pool.Warm("javascript");
        var spec = TestSandbox.Function("next", ("[]", "1"), ("[]", "1"));
        const string counter = "let k = 0;\nfunction next() { return ++k; }";
        for (var i = 0; i < 3; i++)
        {
            var r = await pool.RunAsync(new CodeRequest("javascript", counter, spec), CancellationToken.None);
            Assert.All(r.Tests, t => Assert.Equal(Verdict.Accepted, t.Verdict));   // a fresh engine per case
        }
        Assert.Throws<ArgumentException>(() => pool.Warm("cobol"));
    }

    [Theory]
    [InlineData("javascript", "function next() { return 1; }")]
    [InlineData("csharp", "static int Next() => 1;")]
    public async Task A_worker_near_its_last_program_starts_its_successor_so_no_program_waits_for_a_start(string language, string code)
    {
        // 4 programs per worker: the successor starts after the 3rd (SpareLead(4) = 1), while the worker still serves.
        var limits = TestSandbox.Limits with { MaxWorkers = 1, JavaScriptRunsPerWorker = 4, CSharpRunsPerWorker = 4 };
        Assert.Equal(1, SandboxPool.SpareLead(4));
        Assert.Equal(250, SandboxPool.SpareLead(1_000));
        using var pool = new SandboxPool(limits);
        var spec = TestSandbox.Function("next", ("[]", "1"));
        async Task RunOne()
        {
            var r = await pool.RunAsync(new CodeRequest(language, code, spec), CancellationToken.None);
            Assert.Equal(Verdict.Accepted, r.Tests[0].Verdict);
            await pool.SettleAsync(TimeSpan.FromMinutes(3));   // background starts and retirements done
        }
        for (var i = 0; i < 2; i++) await RunOne();
        Assert.Equal(1, pool.WorkersStarted);                  // the first program's worker, started on demand
        await RunOne();
        Assert.Equal(2, pool.WorkersStarted);                  // its successor, started before the 4th program
        for (var i = 0; i < 9; i++) await RunOne();
        // 12 programs over workers of 4: each retirement found its successor already idle; the first start is the only
        // one a program waited for, and no retirement started a second replacement beside the successor. The most-used
        // idle worker is taken first, so each worker runs its 4 programs before its successor starts serving: workers
        // for programs 1-4, 5-8, 9-12, and the successor started at program 11.
        Assert.Equal(1, pool.WorkersStartedOnDemand);
        Assert.Equal(4, pool.WorkersStarted);
    }
}
