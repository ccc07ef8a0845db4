namespace PostTrain.Rewards.Tests;

public sealed class RewardRunnerTests
{
    // Returns the score listed for the sample's completion ("0", "1", ...): null where the list has null.
    private sealed class Table(string name, params double?[] scores) : IReward
    {
        public string Name => name;
        public RewardResult Score(RewardInput input, CancellationToken cancellationToken) =>
            new(scores[int.Parse(input.Completion)], "table", new Dictionary<string, double> { ["seen"] = 1 });
    }

    private sealed class Lambda(string name, Func<RewardInput, CancellationToken, RewardResult> score) : IReward
    {
        public string Name => name;
        public RewardResult Score(RewardInput input, CancellationToken cancellationToken) => score(input, cancellationToken);
    }

    private static List<RewardInput> Batch(int n) => Enumerable.Range(0, n).Select(i => Sample.Of(i.ToString())).ToList();

    [Fact]
    public void WeightedTotalSkipsNullsAndIsNullWhenAllAreNull()
    {
        var runner = new RewardRunner([new(new Table("a", 1.0, null, null, -2.0)), new(new Table("b", 0.5, 2.0, null, null), 0.5)]);
        var result = runner.Score(Batch(4));
        // 1*1 + 0.5*0.5 = 1.25 | 0.5*2 = 1.0 | all null | 1*(-2) = -2
        Assert.Equal(new double?[] { 1.25, 1.0, null, -2.0 }, result.Totals);
        Assert.Equal(2.0, result.Score(1, 1));
        var a = result.Stats[0];
        Assert.Equal((4, 2, 2, 0, 0), (a.Count, a.Applicable, a.Nulls, a.Errors, a.Timeouts));
        Assert.Equal(-0.5, a.Mean);
        Assert.Equal(System.Math.Sqrt(4.5), a.Std!.Value, 12); // (1 - -0.5)^2 + (-2 - -0.5)^2 = 4.5, over n - 1 = 1
        var b = result.Stats[1];
        Assert.Equal((2, 2, 1.25), (b.Applicable, b.Nulls, b.Mean));
        Assert.Equal(System.Math.Sqrt(1.125), b.Std!.Value, 12);
        Assert.Equal(1.0, b.MetricMeans["seen"]);
    }

    [Fact]
    public void CombineIsTheDocumentedRule()
    {
        Assert.Equal(0.7, RewardRunner.Combine([1.0, null, 0.5], [0.2, 5.0, 1.0])!.Value, 12);
        Assert.Null(RewardRunner.Combine([null, null], [1.0, 1.0]));
        Assert.Equal(0.0, RewardRunner.Combine([0.0, null], [1.0, 1.0]));
    }

    [Fact]
    public void ThrowingRewardGivesNullAndACountedErrorWithItsMessage()
    {
        var flaky = new Lambda("flaky", (x, _) => x.Completion == "1" ? throw new InvalidOperationException("no answer column") : new RewardResult(1.0));
        var result = new RewardRunner([new(flaky), new(new Table("t", 0.0, 3.0, 0.0))]).Score(Batch(3));
        var call = result.Calls[1][0];
        Assert.Equal((RewardCallStatus.Error, (double?)null), (call.Status, call.Score));
        Assert.Equal("InvalidOperationException: no answer column", call.Error);
        Assert.Equal((1, 2, 0), (result.Stats[0].Errors, result.Stats[0].Applicable, result.Stats[0].Nulls));
        Assert.Equal(new[] { "InvalidOperationException: no answer column" }, result.Stats[0].ErrorMessages);
        Assert.Equal(new double?[] { 1.0, 3.0, 1.0 }, result.Totals); // the errored reward is left out of sample 1's total
    }

    [Fact]
    public void NonFiniteScoreIsAnError()
    {
        var result = new RewardRunner([new(new Lambda("nan", (_, _) => new RewardResult(double.NaN)))]).Score(Batch(1));
        Assert.Equal(RewardCallStatus.Error, result.Calls[0][0].Status);
        Assert.Null(result.Totals[0]);
    }

    [Fact]
    public void TimedOutRewardGivesNullAndTheRunnerStopsWaiting()
    {
        using var release = new ManualResetEventSlim();
        var stuck = new Lambda("stuck", (x, _) =>
        {
            if (x.Completion == "0") release.Wait(TimeSpan.FromSeconds(30)); // ignores the token: a runaway
            return new RewardResult(1.0);
        });
        var cooperative = new Lambda("polite", (x, token) =>
        {
            if (x.Completion == "1") Task.Delay(TimeSpan.FromSeconds(30), token).GetAwaiter().GetResult();
            return new RewardResult(1.0);
        });
        // The quick calls must finish inside Timeout on a loaded 2-core machine; the limit counts from when a call starts
        // running, so a call queued behind the runaway for a thread-pool thread is not timed out for the wait.
        var options = new RewardRunnerOptions { Timeout = TimeSpan.FromMilliseconds(1500), MaxParallelism = 4 };
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = new RewardRunner([new(stuck), new(cooperative)], options).Score(Batch(3));
        watch.Stop();
        release.Set();

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(25), $"runner waited {watch.Elapsed}");   // not the stuck call's 30 s
        Assert.Equal(RewardCallStatus.Timeout, result.Calls[0][0].Status);
        Assert.Null(result.Calls[0][0].Score);
        Assert.Equal("timed out after 1500 ms", result.Calls[0][0].Error);
        Assert.Equal(RewardCallStatus.Timeout, result.Calls[1][1].Status);
        Assert.Equal((1, 0, 2), (result.Stats[0].Timeouts, result.Stats[0].Errors, result.Stats[0].Applicable));
        Assert.Equal((1, 0, 2), (result.Stats[1].Timeouts, result.Stats[1].Errors, result.Stats[1].Applicable));
        Assert.Equal(new double?[] { 1.0, 1.0, 2.0 }, result.Totals);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void RunsUpToMaxParallelismCallsAtOnce(int limit)
    {
        var inside = 0;
        var gate = new object();
        var peak = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60); // thread-pool growth on a busy 2-core machine can take seconds
        var probe = new Lambda("probe", (_, _) =>
        {
            var now = Interlocked.Increment(ref inside);
            lock (gate) peak = System.Math.Max(peak, now);
            // Hold the call until `limit` calls are inside together (or a deadline passes), then a little longer
            // so that a runner breaking the bound would be caught with one call too many.
            while (Volatile.Read(ref peak) < limit && DateTime.UtcNow < deadline) Thread.Sleep(1);
            Thread.Sleep(20);
            Interlocked.Decrement(ref inside);
            return new RewardResult(1.0);
        });
        var result = new RewardRunner([new(probe)], new RewardRunnerOptions { MaxParallelism = limit, Timeout = TimeSpan.FromSeconds(90) })
            .Score(Batch(12));
        Assert.All(result.Totals, t => Assert.Equal(1.0, t));
        Assert.Equal(limit, peak);
    }

    [Fact]
    public void RepeatedNamesAreMadeUniqueAndMetricsFlattened()
    {
        var result = new RewardRunner([new(new Table("t", 1.0, 0.0)), new(new Table("t", 0.0, null), 2.0)]).Score(Batch(2));
        Assert.Equal(new[] { "t", "t#2" }, result.Names);
        var m = result.ToMetrics();
        Assert.Equal(0.5, m["rewards/t/mean"]);
        Assert.Equal(System.Math.Sqrt(0.5), m["rewards/t/std"], 12);
        Assert.Equal(1.0, m["rewards/t#2/nulls"]);
        Assert.False(m.ContainsKey("rewards/t#2/std"));
        Assert.Equal(0.5, m["rewards/total/mean"]); // totals 1.0 and 0.0
    }

    [Fact]
    public void CallerCancellationIsRethrown()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var runner = new RewardRunner([new(new Table("t", 1.0))]);
        Assert.ThrowsAny<OperationCanceledException>(() => runner.ScoreAsync(Batch(1), cts.Token).GetAwaiter().GetResult());
    }
}
