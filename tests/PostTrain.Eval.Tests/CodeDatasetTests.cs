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
}
