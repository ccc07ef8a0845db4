using PostTrain.Data.Generators;
using PostTrain.Data.Readers;
using PostTrain.Eval.Tasks;
using PostTrain.Rewards;
using PostTrain.Rewards.Builtins;
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Eval.Tests;

public sealed class CodeDatasetTests
{
    /// <summary>Every reference solution of datasets/code passes all of its tests in the sandbox, and a wrong answer
    /// (the solution's function returning a constant) does not.</summary>
    [Fact]
    public void ReferenceSolutionsPassAndWrongOnesFail()
    {
        var path = DatasetLocator.Locate("datasets/code/test.jsonl", "code");
        var rows = DatasetReader.Read(path).ToList();
        Assert.Equal(20, rows.Count);
        // Generous time limits: this test checks the references' correctness, not the limits (a busy CI machine may
        // need seconds to start a worker); the limits themselves are tested in tests/PostTrain.Rewards.Tests/Sandbox.
        using var pool = new SandboxPool(SandboxLimits.Default with { TimePerTest = TimeSpan.FromSeconds(15) });
        var reward = new CodeReward("javascript", pool: pool);
        var scores = new double?[rows.Count];
        var reasons = new string?[rows.Count];
        Parallel.For(0, rows.Count, i =>
        {
            var r = rows[i];
            var result = reward.Score(new RewardInput((string)r["prompt"]!, (string)r["solution"]!, r.Columns), CancellationToken.None);
            (scores[i], reasons[i]) = (result.Score, result.Reason);
        });
        for (int i = 0; i < rows.Count; i++) Assert.True(scores[i] == 1.0, $"row {i} ({rows[i]["prompt"]}): reference solution scored {scores[i]} ({reasons[i]})");

        var js = rows.First(r => (string)r["language"]! == "javascript");
        var wrong = reward.Score(new RewardInput("", "```js\nfunction add(a, b) { return 3; }\n```", js.Columns), CancellationToken.None);
        Assert.InRange(wrong.Score!.Value, 0.3, 0.4);   // 1 of 3 cases (1 + 2 = 3)
        var cs = rows.First(r => (string)r["language"]! == "csharp");
        var bad = reward.Score(new RewardInput("", "```csharp\nstatic int Add(int a, int b) => a - b;\n```", cs.Columns), CancellationToken.None);
        Assert.Equal(0.0, bad.Score);
    }

    /// <summary>Every family of the generated code tasks (datasets/code/*.parquet), in both languages and with two draws
    /// of its constants: the reference solution passes all 5 hidden cases, whose expected values come from the family's
    /// plain C# evaluator, so the JavaScript body, the C# body and the evaluator agree. The code-synth task reads the
    /// shipped held-out split with its language/kind categories.</summary>
    [Fact]
    public void Generated_reference_solutions_pass_their_hidden_tests_in_both_languages()
    {
        var rng = new SplitMix64(99);
        var tasks = (from template in CodeTemplates.All
                     from language in CodeTaskGenerator.Languages
                     from draw in new[] { 0, 1 }
                     select CodeTaskGenerator.One(rng, template, template.Constants(rng), language, "")).ToList();
        Assert.All(tasks, Assert.NotNull);
        using var pool = new SandboxPool(SandboxLimits.Default with { TimePerTest = TimeSpan.FromSeconds(15) });
        var reward = new CodeReward("javascript", pool: pool);
        var results = new RewardResult[tasks.Count];
        Parallel.For(0, tasks.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var t = tasks[i]!;
            var columns = new Dictionary<string, object?> { ["tests"] = t.Tests, ["language"] = t.Language };
            results[i] = reward.Score(new RewardInput(t.Prompt, t.Completion, columns), CancellationToken.None);
        });
        for (int i = 0; i < tasks.Count; i++)
            Assert.True(results[i].Score == 1.0, $"{tasks[i]!.Language} {tasks[i]!.Function}: reference scored {results[i].Score} ({results[i].Reason})\n{tasks[i]!.Completion}\n{tasks[i]!.Tests}");
        Assert.All(results, r => Assert.Equal(CodeTaskGenerator.HiddenCases, r.Metrics!["tests"]));

        var task = BuiltinTasks.Resolve("code-synth");
        var rows = DatasetReader.Read(DatasetLocator.Locate(task.Dataset, task.Name)).ToList();
        Assert.Equal(400, rows.Count);
        Assert.Equal(8, rows.Select(r => (string)r[task.CategoryColumn]!).Distinct().Count());
    }
}
