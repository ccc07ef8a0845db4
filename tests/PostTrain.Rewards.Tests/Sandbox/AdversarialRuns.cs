// Runs every adversarial case once, concurrently (as many at a time as the pool has workers, so a case's wall
// time is its own), and remembers verdicts and wall times; the theories then assert on them one by one. Also
// owns the sentinel file the programs try to overwrite.
using System.Diagnostics;
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

internal static class AdversarialRuns
{
    public const string SentinelText = "sentinel: must stay unchanged";

    public static readonly string SentinelDir = Directory.CreateTempSubdirectory("posttrain-sentinel-").FullName;

    public static readonly string SentinelPath = WriteSentinel();

    private static readonly Lazy<Task<Dictionary<string, (ExecutionResult Result, TimeSpan Elapsed)>>> All =
        new(() => RunAll(AdversarialCatalog.Cases));

    public static async Task<(ExecutionResult Result, TimeSpan Elapsed)> Get(AdversarialCase c) => (await All.Value)[c.Name];

    private static string WriteSentinel()
    {
        var path = Path.Combine(SentinelDir, "sentinel.txt");
        File.WriteAllText(path, SentinelText);
        return path;
    }

    private static async Task<Dictionary<string, (ExecutionResult, TimeSpan)>> RunAll(IReadOnlyList<AdversarialCase> cases)
    {
        using var gate = new SemaphoreSlim(TestSandbox.Limits.MaxWorkers);
        var runs = cases.Select(async c =>
        {
            await gate.WaitAsync();
            try
            {
                var watch = Stopwatch.StartNew();
                var code = c.Code.Replace("{SENTINEL}", SentinelPath, StringComparison.Ordinal);
                var result = await TestSandbox.Pool.RunAsync(new CodeRequest(c.Language, code, c.Spec), CancellationToken.None);
                return (c.Name, Result: result, watch.Elapsed);
            }
            finally
            {
                gate.Release();
            }
        });
        var all = await Task.WhenAll(runs);
        if (Environment.GetEnvironmentVariable("POSTTRAIN_SANDBOX_TIMINGS") is { Length: > 0 } log)
            File.WriteAllLines(log, all.Select(r => $"{r.Name}\t{r.Elapsed.TotalSeconds:0.00}\t{r.Result.Tests[0].Verdict}\t{r.Result.Tests[0].Detail}"));
        return all.ToDictionary(r => r.Name, r => (r.Result, r.Elapsed));
    }
}
