// One sandbox pool for the whole test assembly (workers are processes: sharing them keeps the suite fast),
// with the ~1 s per-test limits the adversarial cases rely on, plus helpers to build specs.
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

internal static class TestSandbox
{
    public static readonly SandboxLimits Limits = new()
    {
        TimePerTest = TimeSpan.FromSeconds(1),
        HostGrace = TimeSpan.FromSeconds(4),
        MemoryBytes = 192L << 20,
        MaxOutputChars = 16 * 1024,
        MaxWorkers = 3,
    };

    public static readonly SandboxPool Pool = new(Limits);

    public static TestSpec Function(string entry, params (string Args, string Expected)[] cases) =>
        new(entry, cases.Select(c => new TestCase(c.Args, c.Expected, null, null)).ToArray());

    public static TestSpec Stdio(params (string Stdin, string Stdout)[] cases) =>
        new(null, cases.Select(c => new TestCase(null, null, c.Stdin, c.Stdout)).ToArray());

    public static Task<ExecutionResult> Run(string language, string code, TestSpec spec) =>
        Pool.RunAsync(new CodeRequest(language, code, spec), CancellationToken.None);
}
