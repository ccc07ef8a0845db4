// Plain decoding with a static-shape decode step, the form a CUDA graph can capture: the step reads everything it
// needs from device tensors it owns (the tokens to feed, their positions, the cache column to write, the sampling
// step) and advances them itself, so a captured step replays unchanged for every token. Attention spans the whole
// cache (unwritten columns are masked), the cache column is a device index (LatentKvCache.DeviceColumns), and the
// sampler reads its step from the device (CounterRng), so the tokens equal eager decoding's. The host copies the new
// ids and log-probs after each step for the stop checks, as the eager loop does.
// CapturedStep warms up, captures and replays it (or runs it eagerly); compacting finished rows changes the batch
// shape and recaptures.
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal static class StaticDecodeLoop
{
    /// <summary>Continues decoding after step 0: tok (B) the tokens just sampled (to feed), pos (B) their positions,
    /// rowKeys (B) the rows' random streams; rows are the live rows (step 0 already appended).</summary>
    public static void Run(DecodeRun run, List<SequenceState> rows, LatentKvCache cache, Tensor tok, Tensor pos, Tensor rowKeys,
        bool graphs, int promptColumns, CancellationToken ct)
    {
        using var state = new StaticDecodeStep(run.Model, run.Params, cache, tok, pos, rowKeys, firstStep: 1);
        using var step = new CapturedStep(state.Run, graphs, run.Device, run.Stats, prefix: "");
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            step.Run();
            cache.Advance(1);
            run.Stats.DecodeSteps++;

            run.AppendTokens(rows, state.OutTokens, state.OutLogProbs);
            run.ReadRouting(rows, cache, promptColumns);
            if (rows.All(r => r.Done)) break;
            using var keep = run.RowsToKeep(rows);
            if (keep is not null)
            {
                step.Reshaped();
                state.KeepRows(keep);
            }
        }
    }
}

/// <summary>One decode step over device-resident state (see StaticDecodeLoop).</summary>
internal sealed class StaticDecodeStep : IDisposable
{
    private readonly CachedModel cm;
    private readonly SamplingParams p;
    private readonly LatentKvCache cache;
    private Tensor tok, pos, rowKeys;            // (B) int64: token to feed, its position, the row's random stream
    private readonly Tensor column, step;        // (1) int64: cache column to write, index of the token sampled
    private Tensor outTokens, outLogProbs;       // (B) int64, (B) fp32: what the last step sampled

    public Tensor OutTokens => outTokens;
    public Tensor OutLogProbs => outLogProbs;

    public StaticDecodeStep(CachedModel cm, SamplingParams p, LatentKvCache cache, Tensor tok, Tensor pos, Tensor rowKeys, long firstStep)
    {
        this.cm = cm;
        this.p = p;
        this.cache = cache;
        var device = tok.device;
        this.tok = tok.clone().DetachFromDisposeScope();
        this.pos = pos.clone().DetachFromDisposeScope();
        this.rowKeys = rowKeys.clone().DetachFromDisposeScope();
        column = tensor(new long[] { cache.Cursor }, device: device).DetachFromDisposeScope();
        step = tensor(new long[] { firstStep }, device: device).DetachFromDisposeScope();
        outTokens = zeros_like(this.tok).DetachFromDisposeScope();
        outLogProbs = zeros(this.tok.shape[0], dtype: ScalarType.Float32, device: device).DetachFromDisposeScope();
    }

    /// <summary>Feeds the pending tokens, samples the next ones into OutTokens/OutLogProbs and advances the device
    /// state. Launches device work only (capturable).</summary>
    public void Run()
    {
        using var scope = NewDisposeScope();
        long n = tok.shape[0];
        cache.DeviceColumns = column;
        try
        {
            cache.MarkNew(ones(n, 1, dtype: ScalarType.Bool, device: tok.device));
            var hidden = cm.Extend(tok.view(n, 1), pos.view(n, 1), cache, cache.Bias(1));   // (B, 1, H)
            var logits = cm.Logits(hidden).squeeze(1);                                         // (B, V)
            var (t, lp) = Sampler.Sample(logits, p, rowKeys, step);
            outTokens.copy_(t);
            outLogProbs.copy_(lp);
            tok.copy_(t);
            pos.add_(1);
            column.add_(1);
            step.add_(1);
        }
        finally
        {
            cache.DeviceColumns = null;
        }
    }

    /// <summary>Keeps only the given rows (int64 indices on the device) in the cache and the step's state.</summary>
    public void KeepRows(Tensor keep)
    {
        cache.KeepRows(keep);
        TokenGenerator.Replace(ref tok, tok.index_select(0, keep));
        TokenGenerator.Replace(ref pos, pos.index_select(0, keep));
        TokenGenerator.Replace(ref rowKeys, rowKeys.index_select(0, keep));
        TokenGenerator.Replace(ref outTokens, outTokens.index_select(0, keep));
        TokenGenerator.Replace(ref outLogProbs, outLogProbs.index_select(0, keep));
    }

    public void Dispose()
    {
        foreach (var t in new[] { tok, pos, rowKeys, column, step, outTokens, outLogProbs }) t.Dispose();
    }
}
