// Runs one JavaScript program's test cases, each in a fresh limited Jint engine (LimitedJint.Create).
// Function mode: execute the program, look up the entry (`solve` or `Solution.solve`), call it with the case's
// JSON arguments and return JSON.stringify of the result (a Promise is awaited). Stdio mode: execute the program
// with the case's stdin behind readline() / require('fs').readFileSync(0) and return what it printed.
// Parsed programs are kept per worker (Prepared scripts are immutable ASTs, shared safely between engines), so a
// program sent again to the same worker is not parsed again; every case still gets a fresh engine.
using Acornima.Ast;
using Jint;
using Jint.Native;
using Jint.Native.Json;
using PostTrain.Rewards.Policy;
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Sandbox.Worker;

internal sealed class JavaScriptRunner(WorkerRequest request) : ICaseRunner
{
    private readonly Prepared<Script> _script = Prepare(request.Source ?? "");

    public CaseOutcome Run(WorkerCase testCase)
    {
        var stdout = new CappedWriter(request.Limits.MaxOutputChars);
        var stderr = new CappedWriter(request.Limits.MaxOutputChars);
        using var engine = LimitedJint.Create(request.Limits.JavaScript);
        JavaScriptConsole.Install(engine, testCase.Stdin ?? "", stdout, stderr);
        try
        {
            engine.Execute(_script);
            if (request.Entry is null) return Finish(stdout, stdout.ToString());
            var function = engine.Evaluate(request.Entry);
            if (!function.IsCallable()) return new(RunStatus.RuntimeError, null, $"'{request.Entry}' is not a function");
            var args = new JsonParser(engine).Parse(testCase.ArgsJson ?? "[]") as JsArray
                ?? throw new InvalidDataException("case arguments are not a JSON array");
            var values = new JsValue[(int)args.Length];
            for (var i = 0; i < values.Length; i++) values[i] = args[i];
            var result = engine.Call(function, JsValue.Undefined, values).UnwrapIfPromise();
            var json = new JsonSerializer(engine).Serialize(result);
            return Finish(stdout, json is JsString s ? s.ToString() : "null");
        }
        catch (Exception e) when (stdout.Exceeded || stderr.Exceeded)
        {
            _ = e;
            return new(RunStatus.OutputLimit, null, $"output exceeded {request.Limits.MaxOutputChars} characters");
        }
    }

    public bool LeftStateBehind() => false;

    private const int CacheCapacity = 256;
    private static readonly Dictionary<string, Prepared<Script>> Parsed = new(StringComparer.Ordinal);

    private static Prepared<Script> Prepare(string source)
    {
        if (Parsed.TryGetValue(source, out var cached)) return cached;
        if (Parsed.Count >= CacheCapacity) Parsed.Clear();
        try { return Parsed[source] = Engine.PrepareScript(source); }
        catch (Exception e) when (e is not OutOfMemoryException) { throw new ProgramCompileException(e.Message); }
    }

    private CaseOutcome Finish(CappedWriter stdout, string output) => stdout.Exceeded
        ? new(RunStatus.OutputLimit, null, $"output exceeded {request.Limits.MaxOutputChars} characters")
        : CaseOutcome.Completed(output);
}
