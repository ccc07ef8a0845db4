// RewardStream: samples scored as they are added (a sample's task completes while later samples have not even been
// added), the same batch result as ScoreAsync, batch rewards run at completion, and misuse named clearly.
namespace PostTrain.Rewards.Tests;

public sealed class RewardStreamTests
{
    private sealed class Length : IReward
    {
        public string Name => "length";
        public RewardResult Score(RewardInput input, CancellationToken cancellationToken) => new(input.Completion.Length);
    }

    private sealed class Half : IReward
    {
        public string Name => "half";
        public RewardResult Score(RewardInput input, CancellationToken cancellationToken) =>
            input.Completion.Length % 2 == 0 ? new(0.5) : RewardResult.NotApplicable("odd");
    }

    // Scores each sample by its position in the batch (needs the whole batch).
    private sealed class Rank : IBatchReward
    {
        public string Name => "rank";
        public RewardResult Score(RewardInput input, CancellationToken cancellationToken) => new(0);
        public IReadOnlyList<RewardResult> ScoreBatch(IReadOnlyList<RewardInput> inputs, CancellationToken cancellationToken) =>
            inputs.Select((_, i) => new RewardResult(i)).ToList();
    }

    private static readonly string[] Texts = ["a", "bb", "ccc", "dddd", ""];

    [Fact]
    public async Task A_sample_is_scored_before_the_rest_of_the_batch_arrives()
    {
        var runner = new RewardRunner([new(new Length(), 2.0), new(new Half(), 1.0)]);
        var stream = runner.OpenStream(Texts.Length);
        // Sample 3 first and alone: its total (2 * 4 + 0.5 = 8.5) is there before any other sample is added.
        var third = stream.Add(3, Sample.Of(Texts[3]));
        Assert.Equal(8.5, await third.WaitAsync(TimeSpan.FromSeconds(30)));
        var others = new[] { 0, 1, 2, 4 }.Select(i => stream.Add(i, Sample.Of(Texts[i]))).ToList();
        Assert.Equal(new double?[] { 2.0, 4.5, 6.0, 0.5 }, await Task.WhenAll(others));
        var result = await stream.CompleteAsync();
        var batch = await runner.ScoreAsync(Texts.Select(t => Sample.Of(t)).ToList());
        Assert.Equal(batch.Totals, result.Totals);
        Assert.Equal(new double?[] { 2.0, 4.5, 6.0, 8.5, 0.5 }, result.Totals);
        Assert.Equal(batch.ToMetrics(), result.ToMetrics());
    }

    [Fact]
    public async Task Batch_rewards_run_at_completion_on_the_samples_in_index_order()
    {
        var runner = new RewardRunner([new(new Length()), new(new Rank(), 10.0)]);
        var stream = runner.OpenStream(3);
        Assert.Equal(3.0, await stream.Add(2, Sample.Of("xyz")));   // the batch reward is not in a sample's own total
        await stream.Add(0, Sample.Of(""));
        await stream.Add(1, Sample.Of("q"));
        var result = await stream.CompleteAsync();
        // length + 10 * index
        Assert.Equal(new double?[] { 0.0, 11.0, 23.0 }, result.Totals);
    }

    [Fact]
    public async Task Misuse_is_an_error_that_names_the_sample()
    {
        var runner = new RewardRunner([new(new Length())]);
        var stream = runner.OpenStream(3);
        await stream.Add(0, Sample.Of("a"));
        Assert.Contains("sample 0 was already added", Assert.Throws<InvalidOperationException>(() => { _ = stream.Add(0, Sample.Of("b")); }).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = stream.Add(3, Sample.Of("b")); });
        var e = await Assert.ThrowsAsync<InvalidOperationException>(stream.CompleteAsync);
        Assert.Contains("without samples 1, 2", e.Message);
        Assert.Throws<InvalidOperationException>(() => { _ = stream.Add(1, Sample.Of("b")); });
    }
}
