// Ordinary programs through the pool: accepted and wrong answers in both languages and both modes, compile and
// runtime errors, scoring options, the restart after a stuck case, and the isolation the workers report.
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

public sealed class SandboxBehaviourTests
{
    private static Verdict[] Verdicts(ExecutionResult r) => r.Tests.Select(t => t.Verdict).ToArray();

    [Fact]
    public async Task JavaScriptFunctionScoresShareOfPassedCases()
    {
        var r = await TestSandbox.Run("javascript", "function solve(a, b) { return a + b; }",
            TestSandbox.Function("solve", ("[1,2]", "3"), ("[2,2]", "5"), ("[-1,1]", "0"), ("[10,5]", "15")));
        Assert.Equal([Verdict.Accepted, Verdict.WrongAnswer, Verdict.Accepted, Verdict.Accepted], Verdicts(r));
        Assert.Equal(0.75, r.Score);
        Assert.Equal("expected 5, got 4", r.Tests[1].Detail);
    }

    [Fact]
    public async Task JavaScriptConstArrowClassMethodAndStructuredResults()
    {
        var code = """
            const twice = xs => xs.map(x => 2 * x);
            class Solution { static solve(o) { return { keys: Object.keys(o).sort(), n: o.a + 0.1 + 0.2 }; } }
            """;
        var a = await TestSandbox.Run("js", code, TestSandbox.Function("twice", ("[[1,2,3]]", "[2,4,6]")));
        Assert.Equal([Verdict.Accepted], Verdicts(a));
        var b = await TestSandbox.Run("js", code, TestSandbox.Function("Solution.solve", ("""[{"b":1,"a":1}]""", """{"n":1.3,"keys":["a","b"]}""")));
        Assert.Equal([Verdict.Accepted], Verdicts(b));
    }

    [Fact]
    public async Task JavaScriptStdioWithReadlineAndReadFileSync()
    {
        var viaReadline = "const n = Number(readline()); const xs = readline().split(' ').map(Number);\nconsole.log(xs.slice(0, n).reduce((a, b) => a + b, 0));";
        var viaFs = "const lines = require('fs').readFileSync(0, 'utf8').trim().split('\\n');\nprocess.stdout.write(String(lines.length) + '\\n');";
        var spec = TestSandbox.Stdio(("2\n5 7 9\n", "12\n"), ("3\n1 1 1\n", "3"), ("1\n4 4\n", "8\n"));
        Assert.Equal([Verdict.Accepted, Verdict.Accepted, Verdict.WrongAnswer], Verdicts(await TestSandbox.Run("javascript", viaReadline, spec)));
        var r = await TestSandbox.Run("javascript", viaFs, TestSandbox.Stdio(("a\nb\nc\n", "3\n")));
        Assert.Equal([Verdict.Accepted], Verdicts(r));
    }

    [Fact]
    public async Task JavaScriptSyntaxAndRuntimeErrors()
    {
        var syntax = await TestSandbox.Run("javascript", "function solve( { return 1; }", TestSandbox.Function("solve", ("[]", "1"), ("[]", "1")));
        Assert.Equal([Verdict.CompileError, Verdict.CompileError], Verdicts(syntax));
        Assert.NotNull(syntax.Error);
        var thrown = await TestSandbox.Run("javascript", "function solve(x) { if (x > 1) throw new Error('boom'); return x; }",
            TestSandbox.Function("solve", ("[1]", "1"), ("[2]", "2")));
        Assert.Equal([Verdict.Accepted, Verdict.RuntimeError], Verdicts(thrown));
        Assert.Contains("boom", thrown.Tests[1].Detail, StringComparison.Ordinal);
        var missing = await TestSandbox.Run("javascript", "function other() { return 1; }", TestSandbox.Function("solve", ("[]", "1")));
        Assert.Equal([Verdict.RuntimeError], Verdicts(missing));
    }

    [Fact]
    public async Task CSharpScriptMethodClassMethodAndCollections()
    {
        var code = """
            using System.Numerics;
            int[] Twice(int[] xs) => xs.Select(x => 2 * x).ToArray();
            public class Solution
            {
                public List<List<int>> Solve(int n) => Enumerable.Range(1, n).Select(i => Enumerable.Repeat(i, i).ToList()).ToList();
                public static Dictionary<string, string> Big(int e) => new() { ["v"] = BigInteger.Pow(2, e).ToString() };
            }
            """;
        Assert.Equal([Verdict.Accepted, Verdict.WrongAnswer],
            Verdicts(await TestSandbox.Run("csharp", code, TestSandbox.Function("twice", ("[[1,2]]", "[2,4]"), ("[[3]]", "[7]")))));
        Assert.Equal([Verdict.Accepted],
            Verdicts(await TestSandbox.Run("csharp", code, TestSandbox.Function("Solution.Solve", ("[3]", "[[1],[2,2],[3,3,3]]")))));
        Assert.Equal([Verdict.Accepted],
            Verdicts(await TestSandbox.Run("csharp", code, TestSandbox.Function("Big", ("[70]", """{"v":"1180591620717411303424"}""")))));
    }

    [Fact]
    public async Task CSharpStdioProgramReadsConsole()
    {
        var code = """
            var n = int.Parse(Console.ReadLine()!);
            var sb = new StringBuilder();
            for (var i = 1; i <= n; i++) sb.Append(i * i).Append(' ');
            Console.WriteLine(sb.ToString().TrimEnd());
            """;
        var r = await TestSandbox.Run("csharp", code, TestSandbox.Stdio(("3\n", "1 4 9\n"), ("1\n", "1"), ("2\n", "1 4 8\n")));
        Assert.Equal([Verdict.Accepted, Verdict.Accepted, Verdict.WrongAnswer], Verdicts(r));
    }

    [Fact]
    public async Task CSharpCompileAndRuntimeErrors()
    {
        var broken = await TestSandbox.Run("csharp", "int Solve() => \"text\";", TestSandbox.Function("solve", ("[]", "1")));
        Assert.Equal([Verdict.CompileError], Verdicts(broken));
        Assert.Contains("CS0029", broken.Error, StringComparison.Ordinal);
        var thrown = await TestSandbox.Run("csharp", "int Solve(int x) => 10 / x;", TestSandbox.Function("solve", ("[2]", "5"), ("[0]", "0")));
        Assert.Equal([Verdict.Accepted, Verdict.RuntimeError], Verdicts(thrown));
        Assert.Contains("DivideByZeroException", thrown.Tests[1].Detail, StringComparison.Ordinal);
        var badArgs = await TestSandbox.Run("csharp", "int Solve(int x) => x;", TestSandbox.Function("solve", ("[\"seven\"]", "7")));
        Assert.Equal([Verdict.RuntimeError], Verdicts(badArgs));
    }

    [Fact]
    public async Task StuckCaseIsTimeLimitAndLaterCasesStillRunOnAFreshWorker()
    {
        var r = await TestSandbox.Run("csharp", "int Solve(int n) { while (n == 2) { } return n; }",
            TestSandbox.Function("solve", ("[1]", "1"), ("[2]", "2"), ("[3]", "3")));
        Assert.Equal([Verdict.Accepted, Verdict.TimeLimit, Verdict.Accepted], Verdicts(r));
        Assert.Equal(2.0 / 3, r.Score, 12);
    }

    [Fact]
    public async Task AllOrNothingScoringAndFloatTolerance()
    {
        var code = "function solve(x) { return x === 3 ? -1 : 0.1 + 0.2 + x; }";
        var cases = new[] { ("[0]", "0.3"), ("[1]", "1.3"), ("[3]", "3.3") };
        var fraction = await TestSandbox.Run("javascript", code, TestSandbox.Function("solve", cases));
        Assert.Equal(2.0 / 3, fraction.Score, 12);
        var all = await TestSandbox.Run("javascript", code, TestSandbox.Function("solve", cases) with { AllOrNothing = true });
        Assert.Equal(0, all.Score);
        var allPass = await TestSandbox.Run("javascript", code, TestSandbox.Function("solve", cases[..2]) with { AllOrNothing = true });
        Assert.Equal(1, allPass.Score);
    }

    [Fact]
    public async Task WorkersReportTheirIsolation()
    {
        await TestSandbox.Run("javascript", "function solve() { return 1; }", TestSandbox.Function("solve", ("[]", "1")));
        var isolation = TestSandbox.Pool.Isolation;
        foreach (var prefix in new[] { "core=0", "fsize=", "nofile=", "nproc=", "as=", "data=", "no_new_privs" })
            Assert.Contains(isolation, s => s.StartsWith(prefix, StringComparison.Ordinal) && !s.Contains("failed", StringComparison.Ordinal));
        Assert.Contains(WorkerLauncher.HasNetworkNamespace ? "netns=private" : "netns=shared", isolation);
        if (Environment.UserName == "root") Assert.Contains("uid=nobody", isolation);
    }

    [Fact]
    public async Task BadRequestsFailClearly()
    {
        await Assert.ThrowsAsync<ArgumentException>(() =>
            TestSandbox.Pool.RunAsync(new CodeRequest("cobol", "x", TestSandbox.Function("solve", ("[]", "1"))), CancellationToken.None));
        var empty = await TestSandbox.Run("javascript", "  ", TestSandbox.Function("solve", ("[]", "1")));
        Assert.Equal([Verdict.CompileError], Verdicts(empty));
        var huge = await TestSandbox.Run("javascript", new string('x', TestSandbox.Limits.MaxCodeChars + 1), TestSandbox.Function("solve", ("[]", "1")));
        Assert.Equal([Verdict.CompileError], Verdicts(huge));
    }
}
