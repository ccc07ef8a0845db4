using PostTrain.Rewards.Plugins;

namespace PostTrain.Rewards.Tests.Plugins;

public sealed class CSharpScriptPluginTests
{
    private static readonly Lazy<IReward> BoxedMath = new(() => CSharpScriptReward.Load(Path.Combine(Repo.RewardsDir, "boxed_math.csx")));

    [Theory]
    [InlineData(@"<think>half</think> So \boxed{\frac{1}{2}}", "0.5", 1.0)]
    [InlineData(@"\boxed{1,000}", "1000", 1.0)]
    [InlineData(@"\boxed{\dfrac{3}{4}}", @"\frac{3}{4}", 1.0)]
    [InlineData(@"\boxed{x^{2}+1}", "x^{2} + 1", 1.0)]
    [InlineData(@"\boxed{2} then \boxed{3}", "3", 1.0)]
    [InlineData(@"\boxed{3}", "4", 0.0)]
    [InlineData(@"\boxed{6/4}", "1.5", 1.0)]
    [InlineData("the answer is 4", "4", 0.0)]
    [InlineData(@"<think>\boxed{4}</think> so 5", "4", 0.0)]
    public void BoxedMathExample(string completion, string answer, double expected) =>
        Assert.Equal(expected, Sample.Score(BoxedMath.Value, Sample.Of(completion, "Q", ("answer", answer))));

    [Fact]
    public void BoxedMathIsNotApplicableWithoutAnAnswerAndExplainsMisses()
    {
        Assert.Null(Sample.Score(BoxedMath.Value, @"\boxed{4}"));
        Assert.Equal("boxed '3' vs answer '4'", BoxedMath.Value.Score(Sample.Of(@"\boxed{3}", "Q", ("answer", 4L)), default).Reason);
    }

    [Fact]
    public void LambdaScriptWithOptions()
    {
        using var dir = new TempDir();
        var path = dir.Write("len.csx", "// length bonus\nvar scale = Option(\"scale\", 1.0);\ns => new RewardOutput(scale * s.Completion.Length, $\"{s.Completion.Length} chars\")");
        var reward = CSharpScriptReward.Load(path, new Dictionary<string, object?> { ["scale"] = "0.25" });
        var result = reward.Score(Sample.Of("abcd"), default);
        Assert.Equal(("len", 1.0, "4 chars"), (reward.Name, result.Score, result.Reason));
    }

    [Fact]
    public void CompileErrorNamesFileAndLine()
    {
        using var dir = new TempDir();
        var path = dir.Write("typo.csx", "// typo\nRewardOutput Score(RewardSample s)\n{\n    return s.Completon.Length;\n}\nScore");
        var e = Assert.Throws<RewardConfigException>(() => CSharpScriptReward.Load(path));
        Assert.Contains($"{path}:4:", e.Message);
        Assert.Contains("CS1061", e.Message);
    }

    [Fact]
    public void RuntimeExceptionNamesFileAndLine()
    {
        using var dir = new TempDir();
        var path = dir.Write("boom.csx", "RewardOutput Score(RewardSample s)\n{\n    var n = int.Parse(s.Completion);\n    if (n > 3)\n        throw new InvalidOperationException(\"too big: \" + n);\n    return n;\n}\nScore");
        var reward = CSharpScriptReward.Load(path);
        Assert.Equal(2.0, Sample.Score(reward, "2"));
        var e = Assert.Throws<PluginException>(() => reward.Score(Sample.Of("7"), default));
        Assert.Equal($"{path}:5: InvalidOperationException: too big: 7", e.Message);
        var runner = new RewardRunner([new(reward)]).Score([Sample.Of("7")]);
        Assert.Equal($"PluginException: {path}:5: InvalidOperationException: too big: 7", runner.Calls[0][0].Error);
    }

    [Fact]
    public void ScriptWithoutAFunctionIsRejected()
    {
        using var dir = new TempDir();
        var path = dir.Write("nothing.csx", "var x = 1;");
        Assert.Contains("last expression must be the reward function", Assert.Throws<RewardConfigException>(() => CSharpScriptReward.Load(path)).Message);
    }

    [Theory]
    [InlineData("using System.IO; var text = File.ReadAllText(\"/etc/passwd\");", "System.IO.File.ReadAllText(string)", "namespace System.IO")]
    [InlineData("var text = System.IO.File.ReadAllText(\"/etc/passwd\");", "System.IO.File.ReadAllText(string)", "namespace System.IO")]
    [InlineData("System.Diagnostics.Process.Start(\"sh\");", "System.Diagnostics.Process.Start(string)", "namespace System.Diagnostics")]
    [InlineData("var m = typeof(string).GetMethod(\"Trim\", new Type[0]);", "System.Type.GetMethod(string, System.Type[])", "System.Type is denied")]
    [InlineData("var a = System.Reflection.Assembly.Load(\"x\");", "System.Reflection.Assembly.Load(string)", "namespace System.Reflection")]
    [InlineData("var home = Environment.GetEnvironmentVariable(\"HOME\");", "System.Environment.GetEnvironmentVariable(string)", "System.Environment is denied")]
    [InlineData("new System.Threading.Thread(() => { }).Start();", "System.Threading.Thread.Start()", "namespace System.Threading")]
    [InlineData("dynamic d = 1;", "dynamic", "dynamic binds through reflection")]
    [InlineData("var t = \"x\".GetType().Assembly;", "System.Type.Assembly", "System.Type is denied")]
    public void ForbiddenApisAreRejectedNamingSymbolAndLine(string line, string symbol, string reason)
    {
        using var dir = new TempDir();
        var path = dir.Write("evil.csx", $"// evil\n{line}\nvar ok = \"fine\".Length;\ns => 1.0");
        var e = Assert.Throws<RewardConfigException>(() => CSharpScriptReward.Load(path));
        Assert.Contains($"{path}:2:", e.Message);
        Assert.Contains(symbol, e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void ReferenceAndLoadDirectivesAreRejected()
    {
        using var dir = new TempDir();
        dir.Write("other.csx", "var z = 1;");
        var path = dir.Write("directives.csx", "#r \"System.Net.Http\"\n#load \"other.csx\"\ns => 1.0");
        var e = Assert.Throws<RewardConfigException>(() => CSharpScriptReward.Load(path));
        Assert.Contains($"{path}:1:1: #r is not allowed", e.Message);
        Assert.Contains($"{path}:2:1: #load is not allowed", e.Message);
    }
}
