// Scores a batch with several weighted rewards, in parallel, with a time limit per call; OpenStream scores samples as
// they arrive (RewardStream; ScoreAsync is a stream with every sample added at once).
//
// - Parallelism: at most MaxParallelism (sample, reward) calls run at once, each on a thread-pool thread.
// - Failures never reach the caller: a reward that throws, returns a non-finite score, or runs past Timeout yields a
//   null score with Status Error/Timeout and the message, counted per reward in RewardStats. (Cancelling the
//   caller's token does throw OperationCanceledException: that is the caller's own request.)
// - Timeout: the reward gets a CancellationToken that fires at Timeout (Jint plugins and cooperative rewards stop on
//   it) and the runner stops waiting at Timeout either way, both counted from when the call starts running (time
//   queued for a thread-pool thread is not charged to the reward). A runaway in-process reward that ignores the token keeps
//   its thread-pool thread until it returns: the runner cannot kill a thread. That is why untrusted code (model-written
//   programs) runs in the sandbox worker process, never in-process.
// - Total per sample (documented choice): sum of weight * score over the rewards whose score is not null; the
//   weights are not renormalised over the applicable rewards; a sample where every reward is null has a null total.
//   An errored or timed-out call counts as null. Use Combine() for the same rule elsewhere.
// - Batch rewards (IBatchReward, e.g. a reward model) get one ScoreBatch call per batch, beside the per-sample calls
//   of the others, with a time limit of Timeout per sample of the batch; if it throws, times out or returns the wrong
//   number of results, every sample gets that error. Each sample's time is the call's time divided by the batch size.
using System.Diagnostics;

namespace PostTrain.Rewards;

public sealed record RewardRunnerOptions
{
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
}

public sealed class RewardRunner
{
    private readonly IReadOnlyList<WeightedReward> _rewards;
    private readonly RewardRunnerOptions _options;
    private readonly IReadOnlyList<string> _names;

    public RewardRunner(IReadOnlyList<WeightedReward> rewards, RewardRunnerOptions? options = null)
    {
        if (rewards.Count == 0) throw new ArgumentException("no rewards to run", nameof(rewards));
        foreach (var w in rewards)
            if (!double.IsFinite(w.Weight)) throw new ArgumentException($"reward '{w.Reward.Name}' has weight {w.Weight}", nameof(rewards));
        _options = options ?? new RewardRunnerOptions();
        if (_options.MaxParallelism < 1) throw new ArgumentException("MaxParallelism must be >= 1", nameof(options));
        if (_options.Timeout <= TimeSpan.Zero) throw new ArgumentException("Timeout must be positive", nameof(options));
        _rewards = rewards;
        _names = UniqueNames(rewards.Select(r => r.Reward.Name).ToList());
        BatchRewardIndices = Enumerable.Range(0, rewards.Count).Where(r => rewards[r].Reward is IBatchReward).ToList();
        SampleRewardIndices = Enumerable.Range(0, rewards.Count).Where(r => rewards[r].Reward is not IBatchReward).ToList();
    }

    public IReadOnlyList<string> Names => _names;

    public RewardBatchResult Score(IReadOnlyList<RewardInput> batch) => ScoreAsync(batch).GetAwaiter().GetResult();

    public async Task<RewardBatchResult> ScoreAsync(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default)
    {
        var stream = OpenStream(batch.Count, cancellationToken);
        for (var i = 0; i < batch.Count; i++) _ = stream.Add(i, batch[i]);
        return await stream.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>A stream of <paramref name="count"/> samples scored as they are added (see <see cref="RewardStream"/>);
    /// at most MaxParallelism calls of the stream run at once.</summary>
    public RewardStream OpenStream(int count, CancellationToken cancellationToken = default) =>
        new(this, count, new SemaphoreSlim(_options.MaxParallelism), cancellationToken);

    internal IReadOnlyList<WeightedReward> Rewards => _rewards;

    internal IReadOnlyList<int> SampleRewardIndices { get; }

    internal IReadOnlyList<int> BatchRewardIndices { get; }

    internal RewardBatchResult Summarize(RewardCall[][] calls) =>
        RewardBatchResult.FromCalls(_names, _rewards.Select(r => r.Weight).ToList(), calls);

    /// <summary>Sum of weight * score over non-null scores; null when every score is null.</summary>
    public static double? Combine(IReadOnlyList<double?> scores, IReadOnlyList<double> weights)
    {
        if (scores.Count != weights.Count) throw new ArgumentException($"{scores.Count} scores for {weights.Count} weights");
        double? total = null;
        for (var i = 0; i < scores.Count; i++)
            if (scores[i] is { } s) total = (total ?? 0.0) + weights[i] * s;
        return total;
    }

    internal async Task<RewardCall> CallAsync(IReward reward, RewardInput input, CancellationToken outer)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(outer);
        var watch = new Stopwatch();
        var (task, started) = StartTimed(() => reward.Score(input, limit.Token), limit, _options.Timeout, watch);
        try
        {
            await started.WaitAsync(outer);
            var result = await task.WaitAsync(_options.Timeout, outer);
            if (result is null) return Failed(RewardCallStatus.Error, "returned no result (null RewardResult)");
            if (result.Score is { } s && !double.IsFinite(s)) return Failed(RewardCallStatus.Error, $"returned a non-finite score ({s})");
            return new RewardCall(result, RewardCallStatus.Ok, null, watch.Elapsed.TotalMilliseconds);
        }
        catch (OperationCanceledException) when (outer.IsCancellationRequested)
        {
            Observe(task);
            throw;
        }
        catch (TimeoutException e) when (!ReferenceEquals(e, task.Exception?.InnerException))
        {
            Observe(task);
            return Failed(RewardCallStatus.Timeout, $"timed out after {_options.Timeout.TotalMilliseconds:0} ms");
        }
        catch (Exception e) when (e is RewardTimeoutException || (e is OperationCanceledException && limit.IsCancellationRequested))
        {
            return Failed(RewardCallStatus.Timeout, e is RewardTimeoutException ? e.Message : $"timed out after {_options.Timeout.TotalMilliseconds:0} ms");
        }
        catch (Exception e)
        {
            return Failed(RewardCallStatus.Error, $"{e.GetType().Name}: {e.Message}");
        }

        RewardCall Failed(RewardCallStatus status, string message) =>
            new(new RewardResult(null, message), status, message, watch.Elapsed.TotalMilliseconds);
    }

    internal async Task CallBatchAsync(int column, IReadOnlyList<RewardInput> batch, RewardCall[][] calls, CancellationToken outer)
    {
        if (batch.Count == 0) return;
        var reward = (IBatchReward)_rewards[column].Reward;
        var timeout = _options.Timeout * batch.Count;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(outer);
        var watch = new Stopwatch();
        var (task, started) = StartTimed(() => reward.ScoreBatch(batch, limit.Token), limit, timeout, watch);
        IReadOnlyList<RewardResult>? results = null;
        RewardCallStatus failure = RewardCallStatus.Error;
        string? message = null;
        try
        {
            await started.WaitAsync(outer);
            results = await task.WaitAsync(timeout, outer);
            if (results is null || results.Count != batch.Count)
                message = $"returned {results?.Count.ToString() ?? "no"} results for {batch.Count} samples";
        }
        catch (OperationCanceledException) when (outer.IsCancellationRequested)
        {
            Observe(task);
            throw;
        }
        catch (Exception e) when (e is TimeoutException or RewardTimeoutException || (e is OperationCanceledException && limit.IsCancellationRequested))
        {
            Observe(task);
            (failure, message) = (RewardCallStatus.Timeout, $"batch of {batch.Count} timed out after {timeout.TotalMilliseconds:0} ms");
        }
        catch (Exception e)
        {
            message = $"{e.GetType().Name}: {e.Message}";
        }
        double ms = watch.Elapsed.TotalMilliseconds / batch.Count;
        for (var i = 0; i < batch.Count; i++)
        {
            string? error = message ?? results![i] switch
            {
                null => "returned no result (null RewardResult)",
                { Score: { } s } when !double.IsFinite(s) => $"returned a non-finite score ({s})",
                _ => null,
            };
            calls[i][column] = error is null ? new RewardCall(results![i], RewardCallStatus.Ok, null, ms)
                : new RewardCall(new RewardResult(null, error), message is null ? RewardCallStatus.Error : failure, error, ms);
        }
    }

    // Runs score on a thread-pool thread. The time limit (the token's CancelAfter, the stopwatch, and the caller's
    // WaitAsync after `started`) counts from when the call starts running, not from when it was queued: on a busy
    // machine a queued call can wait for a thread-pool thread (one held by a runaway reward, say) far longer than
    // Timeout, and that wait is not the reward's fault.
    private static (Task<T> Task, Task Started) StartTimed<T>(Func<T> score, CancellationTokenSource limit, TimeSpan timeout, Stopwatch watch)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = Task.Run(() =>
        {
            try { limit.CancelAfter(timeout); }
            catch (ObjectDisposedException) { throw new OperationCanceledException("the caller stopped waiting before the call started"); }
            watch.Start();
            started.TrySetResult();
            return score();
        }, CancellationToken.None);
        return (task, started.Task);
    }

    // An abandoned call may still fault later; observe it so it does not surface as an unobserved task exception.
    private static void Observe(Task task) =>
        task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private static IReadOnlyList<string> UniqueNames(IReadOnlyList<string> names)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        return names.Select(n => (seen[n] = seen.GetValueOrDefault(n) + 1) == 1 ? n : $"{n}#{seen[n]}").ToList();
    }
}
