using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

public sealed class SmokeTests
{
    [Fact]
    public async Task JavaScriptAddsNumbers()
    {
        var r = await TestSandbox.Run("javascript", "function solve(a, b) { return a + b; }",
            TestSandbox.Function("solve", ("[1,2]", "3"), ("[2,2]", "5")));
        Assert.Equal([Verdict.Accepted, Verdict.WrongAnswer], r.Tests.Select(t => t.Verdict));
        Assert.Equal(0.5, r.Score);
    }

    [Fact]
    public async Task CSharpAddsNumbers()
    {
        var r = await TestSandbox.Run("csharp", "int Solve(int a, int b) => a + b;",
            TestSandbox.Function("solve", ("[1,2]", "3"), ("[2,2]", "5")));
        Assert.True(r.Tests[0].Verdict == Verdict.Accepted, r.Tests[0].Detail + " " + r.Error);
        Assert.Equal([Verdict.Accepted, Verdict.WrongAnswer], r.Tests.Select(t => t.Verdict));
        Assert.Contains(TestSandbox.Pool.Isolation, s => s.StartsWith("as=", StringComparison.Ordinal));
    }
}
