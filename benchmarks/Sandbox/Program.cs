// Sandbox throughput: a batch of small distinct programs (3 test cases each) through SandboxPool for JavaScript
// and C#, next to an in-process Jint baseline (same limits, no worker process) in the same run. Prints a table of
// programs/s and test cases/s. Usage: dotnet run -c Release --project benchmarks/Sandbox [-- programs=200]
using System.Diagnostics;
using System.Globalization;
using Jint;
using Jint.Native;
using Jint.Native.Json;
using PostTrain.Rewards.Sandbox;

var programs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200;
var workers = System.Math.Max(1, Environment.ProcessorCount);
var limits = new SandboxLimits { MaxWorkers = workers };
var spec = new TestSpec("solve", [new TestCase("[10]", "null", null, null), new TestCase("[20]", "null", null, null), new TestCase("[30]", "null", null, null)]);

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

Console.WriteLine($"sandbox benchmark: {programs} programs x {spec.Cases.Count} cases, {workers} workers, {Environment.ProcessorCount} cores");
var rows = new List<(string Name, int Programs, double Seconds, int Failed)>();

rows.Add(Measure("javascript in-process Jint (baseline)", programs, i => Task.Run(() => InProcess(Js(i), spec, limits))));

using (var pool = new SandboxPool(limits))
{
    await pool.RunAsync(new CodeRequest("javascript", Js(0), spec), CancellationToken.None); // start workers, JIT
    rows.Add(Measure("javascript worker pool", programs, i => Ok(pool.RunAsync(new CodeRequest("javascript", Js(i), spec), CancellationToken.None))));
    await pool.RunAsync(new CodeRequest("csharp", Cs(0), spec), CancellationToken.None);
    rows.Add(Measure($"csharp worker pool ({limits.CSharpRunsPerWorker} programs/worker)", programs,
        i => Ok(pool.RunAsync(new CodeRequest("csharp", Cs(i), spec), CancellationToken.None))));
}
var fresh = limits with { CSharpRunsPerWorker = 1 };
using (var pool = new SandboxPool(fresh))
{
    await pool.RunAsync(new CodeRequest("csharp", Cs(0), spec), CancellationToken.None);
    var n = System.Math.Max(10, programs / 4);
    rows.Add(Measure("csharp worker pool (fresh process per program)", n,
        i => Ok(pool.RunAsync(new CodeRequest("csharp", Cs(i), spec), CancellationToken.None))));
}

Console.WriteLine();
Console.WriteLine($"| {"mode",-52} | {"programs",8} | {"seconds",8} | {"programs/s",10} | {"cases/s",8} | {"failed",6} |");
Console.WriteLine($"|{new string('-', 54)}|{new string('-', 10)}|{new string('-', 10)}|{new string('-', 12)}|{new string('-', 10)}|{new string('-', 8)}|");
foreach (var (name, n, seconds, failed) in rows)
    Console.WriteLine($"| {name,-52} | {n,8} | {seconds,8:0.00} | {n / seconds,10:0.0} | {n * spec.Cases.Count / seconds,8:0.0} | {failed,6} |");

(string, int, double, int) Measure(string name, int n, Func<int, Task<bool>> run)
{
    var watch = Stopwatch.StartNew();
    var failed = 0;
    using var gate = new SemaphoreSlim(workers);
    var tasks = Enumerable.Range(1, n).Select(async i =>
    {
        await gate.WaitAsync();
        try { if (!await run(i)) Interlocked.Increment(ref failed); }
        finally { gate.Release(); }
    }).ToArray();
    Task.WaitAll(tasks);
    Console.WriteLine($"  {name}: {watch.Elapsed.TotalSeconds:0.00} s");
    return (name, n, watch.Elapsed.TotalSeconds, failed);
}

// Every program must run all its cases to completion (expected "null" makes them wrong answers, not failures).
static async Task<bool> Ok(Task<ExecutionResult> run) => (await run).Tests.All(t => t.Verdict is Verdict.WrongAnswer or Verdict.Accepted);

static bool InProcess(string code, TestSpec spec, SandboxLimits limits)
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
