// Runs a tiny JavaScript program and touches the types C# scripts use, so their assemblies are loaded (the
// worker may lose read access to its own folder when it drops to nobody) and the first real run is not paying
// for the JIT.
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Sandbox.Worker;

internal static class WorkerWarmup
{
    public static void Run(string language)
    {
        _ = typeof(Jint.Engine).Assembly;
        _ = typeof(Acornima.ParseErrorException).Assembly;
        if (language == "javascript") RunJavaScript();
        _ = System.Text.Json.JsonSerializer.Serialize(new[] { new List<int> { 1 } });
        _ = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        _ = System.Text.RegularExpressions.Regex.IsMatch("a", "a");
        _ = System.Numerics.BigInteger.Parse("1");
        _ = System.Linq.Enumerable.Range(0, 1).ToArray();
        _ = new System.Collections.Generic.PriorityQueue<int, int>();
    }

    private static void RunJavaScript()
    {
        var limits = SandboxLimits.Default;
        var request = new WorkerRequest("warmup", "javascript", "f", "function f(a){ return [a, 'x'.repeat(2), {k: a}]; }",
            null, null, [new WorkerCase("[1]", null)], limits);
        var outcome = new JavaScriptRunner(request).Run(request.Cases[0]);
        if (outcome.Status != RunStatus.Completed) throw new InvalidOperationException("worker warm-up failed: " + outcome.Error);
    }
}
