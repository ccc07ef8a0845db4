// Batch rewards (IBatchReward, e.g. a reward model) through RewardRunner: one ScoreBatch call per batch beside the
// per-sample rewards, results placed per sample and weighted into the totals; a failing, short or slow batch call
// marks every sample with its error or timeout instead of throwing.
namespace PostTrain.Rewards.Tests;

public sealed class BatchRewardTests
{
    // score = the completion's number times 10; counts its calls
    private sealed class Tens(Func<IReadOnlyList<RewardInput>, IReadOnlyList<RewardResult>>? batch = null) : IBatchReward
    {
        public int BatchCalls, SingleCalls;
        public string Name => "tens";
        public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref SingleCalls);
            return new(10.0 * int.Parse(input.Completion));
        }

        public IReadOnlyList<RewardResult> ScoreBatch(IReadOnlyList<RewardInput> inputs, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref BatchCalls);
            return batch?.Invoke(inputs) ?? inputs.Select(i => new RewardResult(10.0 * int.Parse(i.Completion))).ToList();
        }
    }

    private sealed class One : IReward
    {
        public string Name => "one";
        public RewardResult Score(RewardInput input, CancellationToken cancellationToken) => new(1.0);
    }

    private static List<RewardInput> Batch(int n) => Enumerable.Range(0, n).Select(i => Sample.Of(i.ToString())).ToList();

    [Fact]
    public void ABatchRewardIsCalledOncePerBatchAndWeightedWithTheOthers()
    {
        var tens = new Tens();
        var result = new RewardRunner([new(new One()), new(tens, 0.5)]).Score(Batch(5));
        Assert.Equal(1, tens.BatchCalls);
        Assert.Equal(0, tens.SingleCalls);
        Assert.Equal(new double?[] { 0, 10, 20, 30, 40 }, Enumerable.Range(0, 5).Select(i => result.Score(i, 1)));
        Assert.Equal(new double?[] { 1, 6, 11, 16, 21 }, result.Totals);   // 1 + 0.5 * 10 i
        Assert.Equal(5, result.Stats[1].Applicable);
    }

    [Fact]
    public void AFailingOrShortBatchCallMarksEverySample()
    {
        var throwing = new RewardRunner([new(new One()), new(new Tens(_ => throw new InvalidOperationException("no model")))]).Score(Batch(3));
        Assert.All(throwing.Calls, row => Assert.Equal(RewardCallStatus.Error, row[1].Status));
        Assert.Contains("no model", throwing.Calls[2][1].Error);
        Assert.Equal(3, throwing.Stats[1].Errors);
        Assert.Equal(new double?[] { 1, 1, 1 }, throwing.Totals);   // the rule reward still counts

        var shortList = new RewardRunner([new(new Tens(inputs => [new RewardResult(1)]))]).Score(Batch(3));
        Assert.All(shortList.Calls, row => Assert.Contains("1 results for 3 samples", row[0].Error));

        var nonFinite = new RewardRunner([new(new Tens(inputs => inputs.Select(_ => new RewardResult(double.NaN)).ToList()))]).Score(Batch(2));
        Assert.All(nonFinite.Calls, row => Assert.Equal(RewardCallStatus.Error, row[0].Status));
    }

    [Fact]
    public void ASlowBatchCallTimesOutAfterTheTimeoutPerSample()
    {
        // Far longer than the 400 ms budget, so a late timer on a loaded machine still sees a timeout (the runner does not wait for it).
        var slow = new Tens(inputs => { Thread.Sleep(15_000); return inputs.Select(_ => new RewardResult(1)).ToList(); });
        var result = new RewardRunner([new(slow)], new RewardRunnerOptions { Timeout = TimeSpan.FromMilliseconds(200) }).Score(Batch(2));
        Assert.All(result.Calls, row => Assert.Equal(RewardCallStatus.Timeout, row[0].Status));
        Assert.Contains("batch of 2 timed out after 400 ms", result.Calls[0][0].Error);
    }
}
