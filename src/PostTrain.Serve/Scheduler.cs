// The one thread that owns the model. Requests queue up; after the first one arrives the scheduler waits a short
// window for more, then runs every queued request that can share one engine call (the same sampling settings) as a
// single Generate over all their rows, up to MaxBatchSize rows. Greedy requests always share; sampled requests share
// when temperature and top_p match and no seed is given (the batch gets a fresh random seed); a request with a seed
// runs alone, so its output depends only on its own prompt and seed (the engine's random stream is keyed by the row's
// index in the call). Each request keeps its own max_tokens and stop strings: the engine runs to the largest
// max_tokens and the per-token callback ends each row where its request says. A failing Generate fails only the
// requests of that call. Per call it logs metrics (when a metrics directory is given) and, every status interval, a
// line with what was served since the last one.
using System.Collections.Concurrent;
using System.Diagnostics;
using PostTrain.Core.Generation;

namespace PostTrain.Serve;

/// <summary>Counters of the batching scheduler (read from any thread).</summary>
public sealed class ServeStats
{
    private long requests, batches, rows, tokens, aborted;
    private int largestBatchRequests;

    /// <summary>Requests accepted into the queue.</summary>
    public long Requests => Interlocked.Read(ref requests);
    /// <summary>Engine calls (Generate) run.</summary>
    public long Batches => Interlocked.Read(ref batches);
    /// <summary>Rows (choices) generated over all batches.</summary>
    public long Rows => Interlocked.Read(ref rows);
    /// <summary>Completion tokens generated (including end-of-sentence tokens).</summary>
    public long GeneratedTokens => Interlocked.Read(ref tokens);
    /// <summary>Requests whose client went away before they finished (their rows were stopped).</summary>
    public long AbortedRequests => Interlocked.Read(ref aborted);
    /// <summary>Most requests served by one engine call so far.</summary>
    public int LargestBatchRequests => Volatile.Read(ref largestBatchRequests);

    internal void Queued() => Interlocked.Increment(ref requests);
    internal void Aborted() => Interlocked.Increment(ref aborted);
    internal void Batch(int requestCount, int rowCount, long tokenCount)
    {
        Interlocked.Increment(ref batches);
        Interlocked.Add(ref rows, rowCount);
        Interlocked.Add(ref tokens, tokenCount);
        if (requestCount > largestBatchRequests) Volatile.Write(ref largestBatchRequests, requestCount);
    }
}

internal sealed class Scheduler : IDisposable
{
    private readonly TokenGenerator generator;
    private readonly int eosId, maxBatch;
    private readonly TimeSpan window;
    private readonly TextWriter log;
    private readonly BlockingCollection<Job> queue = new();
    private readonly CancellationTokenSource stopping = new();
    private readonly Thread thread;
    private readonly MetricsLogger? metrics;
    private readonly double statusInterval;
    private long lastStatus = Stopwatch.GetTimestamp(), statusRequests, statusTokens;

    public ServeStats Stats { get; } = new();

    /// <summary>Test seam: runs on the scheduler thread before each engine call with that call's jobs.</summary>
    internal Action<IReadOnlyList<Job>>? BeforeGenerate { get; set; }

    public Scheduler(TokenGenerator generator, int eosId, int maxBatch, TimeSpan window, TextWriter log, MetricsLogger? metrics = null,
        double statusIntervalSeconds = 0)
    {
        (this.generator, this.eosId, this.maxBatch, this.window, this.log) = (generator, eosId, maxBatch, window, log);
        (this.metrics, statusInterval) = (metrics, statusIntervalSeconds);
        thread = new Thread(Loop) { IsBackground = true, Name = "posttrain-serve-scheduler" };
        thread.Start();
    }

    public void Submit(Job job)
    {
        try { queue.Add(job); }
        catch (InvalidOperationException) { throw new ApiException(503, "the server is shutting down", type: "server_error"); }
        Stats.Queued();
    }

    /// <summary>Requests that share one engine call: all greedy; sampled with equal temperature/top_p and no seed.</summary>
    private static object GroupKey(Job j) =>
        j.Request.Temperature == 0 ? "greedy" : j.Request.Seed is null ? (j.Request.Temperature, j.Request.TopP) : j;

    private void Loop()
    {
        var pending = new List<Job>();
        try
        {
            while (true)
            {
                if (pending.Count == 0) pending.Add(queue.Take(stopping.Token));
                long until = Stopwatch.GetTimestamp() + (long)(window.TotalSeconds * Stopwatch.Frequency);
                while (pending.Sum(j => j.Rows) < maxBatch)
                {
                    var left = TimeSpan.FromSeconds((until - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
                    if (left <= TimeSpan.Zero || !queue.TryTake(out var more, (int)Math.Ceiling(left.TotalMilliseconds), stopping.Token)) break;
                    pending.Add(more);
                }
                foreach (var gone in pending.Where(j => j.Aborted.IsCancellationRequested).ToList())
                {
                    pending.Remove(gone);
                    Stats.Aborted();
                    gone.Events.Writer.TryComplete();
                }
                if (pending.Count == 0) continue;
                var key = GroupKey(pending[0]);
                var group = new List<Job>();
                int rows = 0;
                foreach (var j in pending)
                    if (Equals(GroupKey(j), key) && (group.Count == 0 || rows + j.Rows <= maxBatch)) { group.Add(j); rows += j.Rows; }
                pending.RemoveAll(group.Contains);
                Run(group);
            }
        }
        catch (OperationCanceledException) { }
        finally
        {
            queue.CompleteAdding();
            var closing = new ApiException(503, "the server is shutting down", type: "server_error");
            foreach (var j in pending.Concat(queue.GetConsumingEnumerable())) j.Fail(closing);
        }
    }

    private void Run(List<Job> group)
    {
        var rows = group.SelectMany(j => Enumerable.Range(0, j.Rows).Select(r => (Job: j, Row: r))).ToArray();
        var first = group[0].Request;
        var p = new SamplingParams(
            Temperature: first.Temperature, TopP: first.Temperature == 0 ? 1 : first.TopP,
            MaxNewTokens: group.Max(j => j.Request.MaxTokens), StopTokenIds: [eosId],
            Seed: first.Seed ?? Random.Shared.NextInt64(0, long.MaxValue));
        try
        {
            long start = Stopwatch.GetTimestamp();
            double queueMs = group.Max(j => Stopwatch.GetElapsedTime(j.SubmittedAt, start).TotalMilliseconds);
            BeforeGenerate?.Invoke(group);
            var results = generator.Generate(rows.Select(x => x.Job.PromptOf(x.Row)).ToArray(), p,
                (row, token, logProb) => rows[row].Job.OnToken(rows[row].Row, token, logProb), stopping.Token);
            long generated = results.Sum(r => (long)r.Length);
            Stats.Batch(group.Count, rows.Length, generated);
            Report(group, rows.Length, generated, Stopwatch.GetElapsedTime(start).TotalSeconds, queueMs);
            foreach (var j in group)
            {
                if (j.Aborted.IsCancellationRequested) Stats.Aborted();
                j.Complete();
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            foreach (var j in group) j.Fail(new ApiException(503, "the server is shutting down", type: "server_error"));
            throw;
        }
        catch (Exception e)
        {
            log.WriteLine($"serve: generation failed for a batch of {group.Count} request(s): {e.Message}");
            foreach (var j in group) j.Fail(new ApiException(500, $"generation failed: {e.Message}", type: "server_error"));
        }
    }

    private void Report(List<Job> group, int rows, long generated, double seconds, double queueMs)
    {
        metrics?.Log(Stats.Batches,
            ("batch/requests", group.Count), ("batch/rows", rows),
            ("batch/prompt_tokens", group.Sum(j => Enumerable.Range(0, j.Rows).Sum(r => j.PromptOf(r).Length))),
            ("batch/generated_tokens", generated), ("batch/seconds", seconds),
            ("batch/tokens_per_s", seconds > 0 ? generated / seconds : 0), ("batch/max_queue_ms", queueMs));
        statusRequests += group.Count;
        statusTokens += generated;
        double since = Stopwatch.GetElapsedTime(lastStatus).TotalSeconds;
        if (statusInterval > 0 && since >= statusInterval)
        {
            log.WriteLine($"serve: {statusRequests} request(s), {statusTokens} tokens in the last {since:F0} s " +
                $"({statusTokens / since:F1} tokens/s); {Stats.Requests} requests, {Stats.Batches} batches since start");
            (lastStatus, statusRequests, statusTokens) = (Stopwatch.GetTimestamp(), 0, 0);
        }
    }

    public void Dispose()
    {
        stopping.Cancel();
        thread.Join();
        stopping.Dispose();
        queue.Dispose();
        metrics?.Dispose();
    }
}
