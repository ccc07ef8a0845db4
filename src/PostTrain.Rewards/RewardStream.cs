// Streaming scoring: a batch whose samples arrive one at a time (a generator finishing rows at different steps). Each
// Add starts that sample's per-sample reward calls at once (at most MaxParallelism calls in flight, as in a batch) and
// returns a task that completes when they are done, so scoring overlaps the rest of the batch's decoding. Complete
// runs the batch rewards (IBatchReward: they need every sample) and returns the same RewardBatchResult that
// RewardRunner.ScoreAsync would for the same inputs (ScoreAsync is this stream with every sample added at once).
// Add is cheap and never blocks: call it from a generation callback. Not for reuse: one stream per batch.
namespace PostTrain.Rewards;

public sealed class RewardStream
{
    private readonly RewardRunner _runner;
    private readonly RewardInput?[] _inputs;
    private readonly RewardCall[][] _calls;
    private readonly Task<double?>?[] _samples;
    private readonly SemaphoreSlim _gate;
    private readonly CancellationToken _ct;
    private int _completed;

    internal RewardStream(RewardRunner runner, int count, SemaphoreSlim gate, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _runner = runner;
        _inputs = new RewardInput?[count];
        _calls = new RewardCall[count][];
        for (var i = 0; i < count; i++) _calls[i] = new RewardCall[runner.Rewards.Count];
        _samples = new Task<double?>?[count];
        _gate = gate;
        _ct = ct;
    }

    public int Count => _inputs.Length;

    /// <summary>Starts scoring sample <paramref name="index"/>. The task's value is the weighted total of the
    /// per-sample rewards (batch rewards are not in it: they run in <see cref="CompleteAsync"/>); null when all of them
    /// are null.</summary>
    public Task<double?> Add(int index, RewardInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if ((uint)index >= (uint)_inputs.Length) throw new ArgumentOutOfRangeException(nameof(index), $"sample {index} of a stream of {_inputs.Length}");
        if (Volatile.Read(ref _completed) != 0) throw new InvalidOperationException("the reward stream is already complete");
        if (Interlocked.CompareExchange(ref _inputs[index], input, null) is not null)
            throw new InvalidOperationException($"sample {index} was already added to the reward stream");
        var task = ScoreSampleAsync(index, input);
        Volatile.Write(ref _samples[index], task);
        return task;
    }

    /// <summary>Waits for every sample's calls, runs the batch rewards and returns the batch's result. Every index must
    /// have been added.</summary>
    public async Task<RewardBatchResult> CompleteAsync()
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) throw new InvalidOperationException("the reward stream is already complete");
        var missing = Enumerable.Range(0, _inputs.Length).Where(i => Volatile.Read(ref _inputs[i]) is null).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"reward stream completed without samples {string.Join(", ", missing.Take(10))}{(missing.Count > 10 ? ", ..." : "")}");
        var batch = _inputs.Select(x => x!).ToList();
        var batchCalls = _runner.BatchRewardIndices.Select(r => _runner.CallBatchAsync(r, batch, _calls, _ct)).ToList();
        // Wait for the batch rewards even when a sample was cancelled, so none is left running unobserved.
        try { await Task.WhenAll(_samples.Select(t => (Task)t!)).ConfigureAwait(false); }
        finally { await Task.WhenAll(batchCalls).ConfigureAwait(false); }
        return _runner.Summarize(_calls);
    }

    private async Task<double?> ScoreSampleAsync(int index, RewardInput input)
    {
        await Task.Yield();   // off the caller's thread (a generation loop) before any work
        var perSample = _runner.SampleRewardIndices;
        await Task.WhenAll(perSample.Select(async r =>
        {
            await _gate.WaitAsync(_ct).ConfigureAwait(false);
            try { _calls[index][r] = await _runner.CallAsync(_runner.Rewards[r].Reward, input, _ct).ConfigureAwait(false); }
            finally { _gate.Release(); }
        })).ConfigureAwait(false);
        return RewardRunner.Combine(perSample.Select(r => _calls[index][r].Score).ToList(), perSample.Select(r => _runner.Rewards[r].Weight).ToList());
    }
}
