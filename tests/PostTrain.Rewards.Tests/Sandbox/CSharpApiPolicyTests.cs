// The C# allow-list on its own (no worker): typical solution code passes, forbidden symbols are named with
// their line, and lookalikes the policy must see through (aliases, generic arguments, extension methods, base
// classes, implicitly typed locals) are caught.
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using PostTrain.Rewards.Policy;
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

public sealed class CSharpApiPolicyTests
{
    private static (CompiledScript? Script, CompileFailure? Failure) Compile(string code) =>
        CSharpScriptCompiler.Compile(code, CancellationToken.None);

    [Fact]
    public void TypicalSolutionCodeIsAllowed()
    {
        var code = """
            using System.Text.RegularExpressions;
            using System.Numerics;
            using System.Collections.Concurrent;
            record Point(int X, int Y);
            static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);
            int Solve(int[] xs, string s)
            {
                var q = new PriorityQueue<int, int>();
                foreach (var x in xs) q.Enqueue(x, -x);
                var d = new Dictionary<string, List<(int, char)>>();
                var sb = new StringBuilder();
                var words = Regex.Split(s, @"\s+").Where(w => w.Length > 0).OrderBy(w => w).ToList();
                var big = BigInteger.Pow(3, 40) % 1000;
                var span = xs.AsSpan();
                Span<int> buf = stackalloc int[4];
                var cd = new ConcurrentDictionary<int, int>();
                var sorted = from x in xs where x > 0 orderby x select x * 2;
                var t = Task.Run(() => 1).Result;
                var sw = System.Diagnostics.Stopwatch.StartNew();
                var line = Console.ReadLine() ?? Console.In.ReadToEnd();
                Console.Out.WriteLine(new Point(1, 2) with { Y = 3 });
                return (int)Gcd(q.Dequeue(), (long)big) + words.Count + sorted.Count() + t + System.Math.Max(1, 2) + (typeof(int).Name.Length);
            }
            """;
        var (script, failure) = Compile(code);
        Assert.Null(failure);
        Assert.NotNull(script);
        Assert.NotEmpty(script.Assembly);
    }

    [Theory]
    [InlineData("using IO = System.IO;\nvar p = IO.Path.GetTempPath();", "System.IO.Path")]
    [InlineData("var xs = new List<System.IO.FileInfo>();", "System.IO.FileInfo")]
    [InlineData("class Evil : System.Runtime.ConstrainedExecution.CriticalFinalizerObject { }", "CriticalFinalizerObject")]
    [InlineData("var fn = (Func<string, string>)System.IO.File.ReadAllText;", "System.IO.File")]
    [InlineData("var t = typeof(string).GetMethods();", "System.Type.GetMethods")]
    [InlineData("var ok = 1;\nvar cult = System.Globalization.CultureInfo.DefaultThreadCurrentCulture;", "DefaultThreadCurrentCulture (line 2)")]
    [InlineData("var q = new[] { 1 }.AsQueryable();", "System.Linq.Queryable")]
    [InlineData("var h = Console.OpenStandardInput();", "System.Console.OpenStandardInput")]
    [InlineData("object o = System.Threading.Timer.ActiveCount;", "System.Threading.Timer")]
    [InlineData("var r = System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(typeof(string));", "RuntimeHelpers")]
    [InlineData("var f = Task.Factory.StartNew(() => 1);", "System.Threading.Tasks.Task.Factory")]
    public void ForbiddenUsesAreNamed(string code, string expected)
    {
        var (_, failure) = Compile(code);
        Assert.NotNull(failure);
        Assert.Equal(Verdict.Forbidden, failure.Verdict);
        Assert.Contains(expected, failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DirectivesAreReportedOnTheirOwnLine()
    {
        // A directive is trivia of the next token: the line must be the directive's, not the following code's.
        var (_, failure) = Compile("#r \"System.Net.Http\"\n#load \"/etc/passwd\"\n\nint Solve() => 1;");
        Assert.NotNull(failure);
        Assert.Equal(Verdict.Forbidden, failure.Verdict);
        Assert.Equal("#r (line 1): loads assemblies; #load (line 2): loads other source files", failure.Message);
    }

    [Fact]
    public void PolicyRunsOnTheSemanticModelNotOnText()
    {
        // The words appear, but only in a string and a comment: allowed.
        var (_, failure) = Compile("// System.IO.File.Delete\nvar s = \"System.Diagnostics.Process.Start\";");
        Assert.Null(failure);
        var tree = CSharpSyntaxTree.ParseText("var n = System.Environment.ProcessorCount;", CSharpParseOptions.Default.WithKind(SourceCodeKind.Script));
        var compilation = CSharpCompilation.CreateScriptCompilation("t", tree,
            [MetadataReference.CreateFromFile(typeof(object).Assembly.Location)]);
        var violations = CSharpApiPolicy.Check(compilation.GetSemanticModel(tree), CSharpAllowList.UntrustedPrograms, CancellationToken.None);
        var v = Assert.Single(violations);
        Assert.Equal(("System.Environment.ProcessorCount", "System.Environment is denied", 1), (v.Symbol, v.Reason, v.Line));
    }
}
