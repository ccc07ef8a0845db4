using PostTrain.Rewards.Plugins;
using PostTrain.Rewards.Policy;

namespace PostTrain.Rewards.Tests.Plugins;

public sealed class JsPluginTests
{
    private static IReward Shipped(string file) => JsPluginReward.Load(Path.Combine(Repo.RewardsDir, file));

    [Theory]
    [InlineData("<think>\nadd 2 and 2\n</think>\nThe answer is 4.", "Q", 1.0)]
    [InlineData("<think></think>4", "Q", 0.0)]
    [InlineData("The answer is 4.", "Q", 0.0)]
    [InlineData("<think>a</think><think>b</think>4", "Q", 0.0)]
    [InlineData("<think>r</think>  ", "Q", 0.0)]
    [InlineData("2 + 2 = 4\n</think>\n4", "Assistant: <think>\n", 1.0)]
    public void R1FormatExampleScoresLikeTheBuiltin(string completion, string prompt, double expected)
    {
        Assert.Equal(expected, Sample.Score(Shipped("r1_format.js"), completion, prompt));
        Assert.Equal(expected, Sample.Score(new PostTrain.Rewards.Builtins.FormatReward(), completion, prompt));
    }

    // Prompt numbers 3, 4, 5: "3 * 4 = 12" is right and grounded; "12 + 5 = 17" then uses the earlier result.
    [Theory]
    [InlineData("3 * 4 = 12\n12 + 5 = 17\nThe answer is \\boxed{17}.", 1.0)]
    [InlineData("3 * 4 = 12\n12 + 5 = 18\nThe answer is \\boxed{18}.", 0.5)]     // second step wrong
    [InlineData("3 * 7 = 21\n21 + 5 = 26", 0.0)]                                    // 7 is not in the prompt, so 21 is not known
    [InlineData("3 * 4 = 13\n13 + 5 = 18", 0.0)]                                    // wrong first step poisons the second
    [InlineData("The answer is \\boxed{17}.", 0.0)]                                 // no steps at all
    [InlineData("20 / 4 = 5\n3 * 4 = 12", 0.5)]                                      // 20 not in the prompt
    public void ArithStepsGivesCreditPerRightGroundedStep(string completion, double expected)
    {
        var prompt = "Tom has 3 bags with 4 pens in each bag. He finds 5 more. How many pens does Tom have now?";
        Assert.Equal(expected, Sample.Score(Shipped("arith_steps.js"), completion, prompt)!.Value, 12);
    }

    [Fact]
    public void ArithStepsMinLinesDividesByTheExpectedStepCount()
    {
        var input = Sample.Of("3 * 4 = 12", "3 bags of 4, and 5 more");
        var result = JsPluginReward.Load(Path.Combine(Repo.RewardsDir, "arith_steps.js"), new Dictionary<string, object?> { ["min_lines"] = "2" })
            .Score(input, default);
        Assert.Equal(0.5, result.Score!.Value, 12);
        Assert.Equal((1.0, 1.0), (result.Metrics!["steps"], result.Metrics["good_steps"]));
    }

    [Fact]
    public void R1FormatExampleReturnsReasonAndMetrics()
    {
        var result = Shipped("r1_format.js").Score(Sample.Of("<think>abc</think> 42 "), default);
        Assert.Equal("ok", result.Reason);
        Assert.Equal(3.0, result.Metrics!["reasoning_chars"]);
        Assert.Equal(2.0, result.Metrics["answer_chars"]);
    }

    [Fact]
    public void PluginsCannotTurnAModelsOutputIntoCode()
    {
        using var dir = new TempDir();
        var path = dir.Write("runner.js", "function reward(s) { return new Function('return ' + s.completion)(); }\n");
        var e = Assert.ThrowsAny<Exception>(() => JsPluginReward.Load(path).Score(Sample.Of("1 + 1"), default));
        Assert.Contains("runner.js", e.Message);
    }

    [Fact]
    public void SyntaxErrorNamesFileAndLine()
    {
        using var dir = new TempDir();
        var path = dir.Write("bad.js", "// bad\nfunction reward(s) {\n  return 1 +;\n}\n");
        var e = Assert.Throws<RewardConfigException>(() => JsPluginReward.Load(path));
        Assert.StartsWith($"{path}:3:", e.Message);
        Assert.Contains("syntax error", e.Message);
    }

    [Fact]
    public void RuntimeErrorNamesFileAndLine()
    {
        using var dir = new TempDir();
        var path = dir.Write("throws.js", "function reward(s) {\n  var n = s.completion.length;\n  if (n > 2) throw new Error('too long: ' + n);\n  return n;\n}\n");
        var reward = JsPluginReward.Load(path);
        Assert.Equal(2.0, Sample.Score(reward, "ab"));
        var e = Assert.Throws<PluginException>(() => reward.Score(Sample.Of("abcd"), default));
        Assert.Equal($"{path}:3: too long: 4", e.Message);
        Assert.Equal(3, e.Line);
    }

    [Fact]
    public void TopLevelErrorAndMissingFunctionFailLoading()
    {
        using var dir = new TempDir();
        var top = dir.Write("top.js", "var x = 1;\nnull.boom;\nfunction reward(s) { return 1; }");
        Assert.StartsWith($"{top}:2:", Assert.Throws<RewardConfigException>(() => JsPluginReward.Load(top)).Message);
        var none = dir.Write("none.js", "function score(s) { return 1; }");
        Assert.Contains("defines no function reward", Assert.Throws<RewardConfigException>(() => JsPluginReward.Load(none)).Message);
    }

    [Fact]
    public void InfiniteLoopIsStoppedByTheLimits()
    {
        using var dir = new TempDir();
        var path = dir.Write("loop.js", "function reward(s) {\n  while (true) {}\n}\n");
        var statements = JsPluginReward.Load(path, limits: new JavaScriptLimits { MaxStatements = 100_000 });
        Assert.Contains("MaxStatements", Assert.Throws<RewardTimeoutException>(() => statements.Score(Sample.Of("x"), default)).Message);
        var clock = JsPluginReward.Load(path, limits: new JavaScriptLimits { MaxStatements = int.MaxValue, Timeout = TimeSpan.FromMilliseconds(200) });
        Assert.Contains("TimeoutInterval", Assert.Throws<RewardTimeoutException>(() => clock.Score(Sample.Of("x"), default)).Message);

        // Through the runner: a counted timeout with a null score, and the runner's own token also stops the engine.
        var runner = new RewardRunner([new(JsPluginReward.Load(path, limits: new JavaScriptLimits { MaxStatements = int.MaxValue, Timeout = TimeSpan.FromMinutes(1) }))],
            new RewardRunnerOptions { Timeout = TimeSpan.FromMilliseconds(300) });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = runner.Score([Sample.Of("x")]);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(45));   // not the engine's own 1 min: the runner's token stopped it
        Assert.Equal((RewardCallStatus.Timeout, (double?)null), (result.Calls[0][0].Status, result.Calls[0][0].Score));
        Assert.Equal(1, result.Stats[0].Timeouts);
    }

    [Fact]
    public void MemoryRecursionAndClrAccessAreRefused()
    {
        using var dir = new TempDir();
        var limits = new JavaScriptLimits { MaxArraySize = 10_000 };
        var arrays = JsPluginReward.Load(dir.Write("arrays.js", "function reward(s) { var a = []; while (true) a.push(a.length); }"), limits: limits);
        Assert.Contains("memory limit", Assert.Throws<PluginException>(() => arrays.Score(Sample.Of("x"), default)).Message);
        var deep = JsPluginReward.Load(dir.Write("deep.js", "function f(n) { return f(n + 1); }\nfunction reward(s) { return f(0); }"));
        Assert.Contains("LimitRecursion", Assert.Throws<PluginException>(() => deep.Score(Sample.Of("x"), default)).Message);
        var clr = JsPluginReward.Load(dir.Write("clr.js", "function reward(s) {\n  return System.IO.File.ReadAllText('/etc/passwd').length;\n}"));
        var e = Assert.Throws<PluginException>(() => clr.Score(Sample.Of("x"), default));
        Assert.Contains("clr.js:2:", e.Message);
        Assert.Contains("System is not defined", e.Message);
    }

    [Fact]
    public void EachCallStartsFromAFreshEngine()
    {
        using var dir = new TempDir();
        var reward = JsPluginReward.Load(dir.Write("counter.js", "var calls = 0;\nfunction reward(s) { calls += 1; return calls; }"));
        Assert.Equal([1.0, 1.0, 1.0], Enumerable.Range(0, 3).Select(_ => Sample.Score(reward, "x")!.Value));
    }

    [Fact]
    public void ReturnValuesAreCheckedAgainstTheContract()
    {
        using var dir = new TempDir();
        var reward = JsPluginReward.Load(dir.Write("shapes.js", """
            function reward(s) {
              switch (s.completion) {
                case "null": return null;
                case "obj": return { score: 0.5, reason: "half", metrics: { n: 2 } };
                case "skip": return { score: null, reason: "n/a" };
                case "text": return "1";
                default: return { score: "high" };
              }
            }
            """));
        Assert.Null(Sample.Score(reward, "null"));
        var obj = reward.Score(Sample.Of("obj"), default);
        Assert.Equal((0.5, "half", 2.0), (obj.Score, obj.Reason, obj.Metrics!["n"]));
        Assert.Equal("n/a", reward.Score(Sample.Of("skip"), default).Reason);
        Assert.Contains("must return a number", Assert.Throws<PluginException>(() => reward.Score(Sample.Of("text"), default)).Message);
        Assert.Contains("score must be a number", Assert.Throws<PluginException>(() => reward.Score(Sample.Of("x"), default)).Message);
    }

    [Fact]
    public void ColumnsAndOptionsReachThePlugin()
    {
        using var dir = new TempDir();
        var reward = JsPluginReward.Load(dir.Write("cols.js", "function reward(s, o) { return s.columns.answer * o.k + s.columns.list.length; }"),
            new Dictionary<string, object?> { ["k"] = 10 });
        Assert.Equal(42.0 * 10 + 2, Sample.Score(reward, Sample.Of("x", "Q", ("answer", 42L), ("list", new List<object?> { "a", "b" }))));
    }
}
