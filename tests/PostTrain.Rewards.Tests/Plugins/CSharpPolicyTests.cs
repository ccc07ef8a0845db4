using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using PostTrain.Rewards.Plugins;
using PostTrain.Rewards.Policy;

namespace PostTrain.Rewards.Tests.Plugins;

// CSharpApiPolicy with the plugin allow-list on ordinary (non-script) compilations.
public sealed class CSharpPolicyTests
{
    private static IReadOnlyList<PolicyViolation> Check(string code)
    {
        var tree = CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Latest), path: "Test.cs");
        var references = new[] { typeof(object), typeof(Enumerable), typeof(System.Text.RegularExpressions.Regex), typeof(List<>), typeof(RewardSample), typeof(System.Diagnostics.Process) }
            .Select(t => MetadataReference.CreateFromFile(t.Assembly.Location))
            .Append(MetadataReference.CreateFromFile(System.Reflection.Assembly.Load("System.Runtime").Location));
        var compilation = CSharpCompilation.Create("t", [tree], references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true));
        return CSharpApiPolicy.Check(compilation, CSharpAllowList.Plugins);
    }

    [Fact]
    public void OrdinaryRewardCodeIsAllowed()
    {
        var violations = Check("""
            using System;
            using System.Collections.Generic;
            using System.Linq;
            using System.Text.RegularExpressions;
            using System.Threading.Tasks;
            using PostTrain.Rewards.Plugins;
            public record Pair(int A, string B);
            public static class R
            {
                public static RewardOutput Score(RewardSample s)
                {
                    var words = s.Completion.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    var counts = words.GroupBy(w => w).ToDictionary(g => g.Key, g => g.Count());
                    var (a, b) = (counts.Count, $"{words.Length} words");
                    var m = Regex.Match(s.Answer, @"\d+");
                    var set = new HashSet<string>(words) { "x" };
                    int[] arr = [1, 2, 3];
                    var span = arr.AsSpan()[1..];
                    var t = Task.FromResult(span.Length).Result;
                    var p = new Pair(a, b);
                    return new RewardOutput(m.Success ? 1.0 : 0.0, p.B + t, new Dictionary<string, double> { ["n"] = set.Count });
                }
            }
            """);
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    [Fact]
    public void ViolationsCarrySymbolLineAndColumn()
    {
        var violations = Check("""
            using System.IO;
            public static class R
            {
                public static int F()
                {
                    return File.ReadAllText("x").Length
                        + System.Diagnostics.Process.GetCurrentProcess().Id;
                }
            }
            """);
        Assert.True(violations.Count == 3, string.Join("\n", violations));
        Assert.Equal(("System.IO", 1, 1), (violations[0].Symbol, violations[0].Line, violations[0].Column));
        Assert.Equal(("System.IO.File.ReadAllText(string)", 6, 16), (violations[1].Symbol, violations[1].Line, violations[1].Column));
        Assert.Equal(("System.Diagnostics.Process.Id", 7, 15), (violations[2].Symbol, violations[2].Line, violations[2].Column));
        Assert.Equal("Test.cs", violations[1].File);
        Assert.Equal("Test.cs:6:16: System.IO.File.ReadAllText(string) is not allowed (namespace System.IO is not allowed)", violations[1].ToString());
    }

    [Fact]
    public void UnsafeCodeAndInteropAreRejected()
    {
        var violations = Check("""
            using System.Runtime.InteropServices;
            public static unsafe class R
            {
                [DllImport("libc")] static extern int getpid();
                public static int F() { int x = 1; int* p = &x; return *p; }
                public static int G() { System.Span<int> s = stackalloc int[4]; return s.Length; }
            }
            """);
        var symbols = violations.Select(v => v.Symbol).ToList();
        Assert.Contains("System.Runtime.InteropServices", symbols);
        Assert.Contains("unsafe", symbols);
        Assert.Contains("extern", symbols);
        Assert.Contains("int*", symbols);
        Assert.Contains("stackalloc", symbols);
    }

    [Fact]
    public void OtherPostTrainTypesAreNotHostTypes()
    {
        var violations = Check("""
            public static class R
            {
                public static int F() => PostTrain.Rewards.Commands.RewardCommands.List("/", System.Console.Out);
            }
            """);
        Assert.Contains(violations, v => v.Symbol.StartsWith("PostTrain.Rewards.Commands.RewardCommands.List", StringComparison.Ordinal));
    }
}
