// Sandbox throughput: batches of small programs (3 test cases each) through SandboxPool for JavaScript and C#, next to
// in-process baselines in the same run (JavaScript: Jint with the same limits, no worker process; C#: Roslyn scripting
// compiled and called in-process, no policy check, no isolation). Two program mixes: all distinct, and GRPO-like (8
// copies of each program, as 8 samples of one prompt that agree). Every arm runs `rounds` times, the arms alternating,
// so a machine shared with other work loads them alike. Before the rounds every pool worker is started and warmed with
// 8 programs per core per language (steady state, as GRPO's warm pool). Prints a table of programs/s and test cases/s
// per round, with the worker processes each pool arm started and how many of those a program had to wait for (a worker
// nearing its last program starts its successor ahead, so retirements should not make programs wait).
// `latency` as a third argument measures instead JavaScript programs run one at a time through one warm worker, beside
// the same programs run in-process one at a time (the pool's per-program cost, host and worker, without parallelism).
// Usage: dotnet run -c Release --project benchmarks/Sandbox [-- programs=200 [rounds=2 [latency]]]
using System.Diagnostics;
using System.Globalization;
using Jint;
using Jint.Native;
using Jint.Native.Json;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;
using PostTrain.Rewards.Sandbox;

var programs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200;
var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2;
var latency = args.Length > 2 && args[2] == "latency";
var workers = System.Math.Max(1, Environment.ProcessorCount);
var limits = new SandboxLimits { MaxWorkers = workers };
var spec = new TestSpec("solve", [new TestCase("[10]", "null", null, null), new TestCase("[20]", "null", null, null), new TestCase("[30]", "null", null, null)]);
int[] caseArgs = [10, 20, 30];
const int Copies = 8;

string Js(int i) => (i % 3) switch
{
    0 => $"function solve(n) {{ let s = {i}; for (let k = 0; k < n; k++) s += k * k; return s; }}",
    1 => $"function solve(n) {{ const a = Array.from({{length: n}}, (_, k) => (k * {i + 7}) % 101); return a.sort((x, y) => x - y)[0]; }}",
    _ => $"function fib(n) {{ return n < 2 ? n : fib(n - 1) + fib(n - 2); }}\nfunction solve(n) {{ return fib(n % 15) + {i}; }}",
};
string Cs(int i) => (i % 3) switch
{
    0 => $"long Solve(int n) {{ long s = {i}; for (int k = 0; k < n; k++) s += k * k; return s; }}",
    1 => $"int Solve(int n) => Enumerable.Range(0, n).Select(k => (k * {i + 7}) % 101).OrderBy(x => x).First();",
    _ => $"int Fib(int n) => n < 2 ? n : Fib(n - 1) + Fib(n - 2);\nint Solve(int n) => Fib(n % 15) + {i};",
};
// `seed` keeps every round's programs new to the pool (no cache hit carried over from an earlier round).
Func<int, string> Distinct(Func<int, string> make, int seed) => i => make(seed * 100_000 + i);
Func<int, string> Grpo(Func<int, string> make, int seed) => i => make(seed * 100_000 + i / Copies);

Console.WriteLine($"sandbox benchmark: {programs} programs x {spec.Cases.Count} cases, {workers} workers, {Environment.ProcessorCount} cores, {rounds} rounds");
var rows = new List<(string Name, int Round, int Programs, double Seconds, int Failed, string Starts)>();
SandboxPool? timedPool = null;
var scriptOptions = ScriptOptions.Default.WithImports("System", "System.Linq").WithReferences(typeof(Enumerable).Assembly);

if (!latency)
using (var pool = new SandboxPool(limits))
{
    timedPool = pool;
    // Steady state, as in a GRPO run (the code reward's `warm: true` starts the workers with the recipe): every worker
    // started and past its first programs' JIT before any arm is timed; the in-process baselines warmed alike.
    pool.Warm("javascript");
    pool.Warm("csharp");
    var warmup = workers * 8;
    Add("warm-up (not reported)", 0, warmup, i => Ok(pool.RunAsync(new CodeRequest("javascript", Distinct(Js, 90)(i), spec), CancellationToken.None)));
    Add("warm-up (not reported)", 0, warmup, i => Ok(pool.RunAsync(new CodeRequest("csharp", Distinct(Cs, 90)(i), spec), CancellationToken.None)));
    Add("warm-up (not reported)", 0, warmup, i => Task.Run(() => InProcessJs(Distinct(Js, 91)(i), spec, limits)));
    Add("warm-up (not reported)", 0, workers, i => InProcessCs(Distinct(Cs, 91)(i)));
    rows.Clear();
    Thread.Sleep(2000);   // let the warm-up's spare starts finish
    for (var round = 1; round <= rounds; round++)
    {
        var seed = round;
        Add("javascript in-process Jint (baseline)", round, programs, i => Task.Run(() => InProcessJs(Distinct(Js, seed)(i), spec, limits)));
        Add("javascript worker pool", round, programs, i => Ok(pool.RunAsync(new CodeRequest("javascript", Distinct(Js, seed)(i), spec), CancellationToken.None)));
        Add($"javascript worker pool, {Copies} copies per program", round, programs,
            i => Ok(pool.RunAsync(new CodeRequest("javascript", Grpo(Js, seed + 50)(i), spec), CancellationToken.None)));
        Add("csharp in-process Roslyn script (baseline)", round, programs, i => InProcessCs(Distinct(Cs, seed)(i)));
        Add($"csharp worker pool ({limits.CSharpRunsPerWorker} programs/worker)", round, programs,
            i => Ok(pool.RunAsync(new CodeRequest("csharp", Distinct(Cs, seed)(i), spec), CancellationToken.None)));
        Add($"csharp worker pool, {Copies} copies per program", round, programs,
            i => Ok(pool.RunAsync(new CodeRequest("csharp", Grpo(Cs, seed + 50)(i), spec), CancellationToken.None)));
    }
}

if (latency)
{
    // one worker, one program at a time: the pool's per-program cost (host + worker) against the in-process run
    using var one = new SandboxPool(limits with { MaxWorkers = 1 });
    timedPool = one;
    one.Warm("javascript");
    Add("warm-up (not reported)", 0, 200, i => Ok(one.RunAsync(new CodeRequest("javascript", Distinct(Js, 95)(i), spec), CancellationToken.None)), 1);
    rows.RemoveAt(rows.Count - 1);
    for (var round = 1; round <= rounds; round++)
    {
        var seed = 70 + round;
        Add("javascript in-process Jint, one at a time", round, programs, i => Task.FromResult(InProcessJs(Distinct(Js, seed)(i), spec, limits)), 1);
        Add("javascript one worker, one program at a time", round, programs,
            i => Ok(one.RunAsync(new CodeRequest("javascript", Distinct(Js, seed)(i), spec), CancellationToken.None)), 1);
    }
}

Console.WriteLine();
Console.WriteLine($"| {"mode",-52} | {"round",5} | {"programs",8} | {"seconds",8} | {"programs/s",10} | {"cases/s",8} | {"failed",6} | {"worker starts (waited for)",26} |");
Console.WriteLine($"|{new string('-', 54)}|{new string('-', 7)}|{new string('-', 10)}|{new string('-', 10)}|{new string('-', 12)}|{new string('-', 10)}|{new string('-', 8)}|{new string('-', 28)}|");
foreach (var (name, round, n, seconds, failed, starts) in rows.OrderBy(r => r.Name).ThenBy(r => r.Round))
    Console.WriteLine($"| {name,-52} | {round,5} | {n,8} | {seconds,8:0.00} | {n / seconds,10:0.0} | {n * spec.Cases.Count / seconds,8:0.0} | {failed,6} | {starts,26} |");

void Add(string name, int round, int n, Func<int, Task<bool>> run, int concurrency = 0)
{
    var started = timedPool?.WorkersStarted ?? 0;
    var waited = timedPool?.WorkersStartedOnDemand ?? 0;
    var watch = Stopwatch.StartNew();
    var failed = 0;
    using var gate = new SemaphoreSlim(concurrency > 0 ? concurrency : workers * 2);
    var tasks = Enumerable.Range(1, n).Select(async i =>
    {
        await gate.WaitAsync();
        try { if (!await run(i)) Interlocked.Increment(ref failed); }
        finally { gate.Release(); }
    }).ToArray();
    Task.WaitAll(tasks);
    Console.WriteLine($"  round {round}: {name}: {watch.Elapsed.TotalSeconds:0.00} s");
    var starts = name.Contains("pool") && timedPool is { } p
        ? $"{p.WorkersStarted - started} ({p.WorkersStartedOnDemand - waited})" : "-";
    rows.Add((name, round, n, watch.Elapsed.TotalSeconds, failed, starts));
}

// Every program must run all its cases to completion (expected "null" makes them wrong answers, not failures).
static async Task<bool> Ok(Task<ExecutionResult> run) => (await run).Tests.All(t => t.Verdict is Verdict.WrongAnswer or Verdict.Accepted);

static bool InProcessJs(string code, TestSpec spec, SandboxLimits limits)
{
    var script = Engine.PrepareScript(code);
    foreach (var c in spec.Cases)
    {
        using var engine = PostTrain.Rewards.Policy.LimitedJint.Create(limits.JavaScript);
        engine.Execute(script);
        var args = (JsArray)new JsonParser(engine).Parse(c.ArgsJson!);
        var result = engine.Call(engine.Evaluate("solve"), JsValue.Undefined, [.. args]);
        if (new JsonSerializer(engine).Serialize(result) is not JsString) return false;
    }
    return true;
}

async Task<bool> InProcessCs(string code)
{
    var solve = await CSharpScript.EvaluateAsync<Func<int, object>>(code + "\nnew System.Func<int, object>(n => Solve(n))", scriptOptions);
    foreach (var n in caseArgs)
        if (System.Text.Json.JsonSerializer.Serialize(solve(n)).Length == 0) return false;
    return true;
}
