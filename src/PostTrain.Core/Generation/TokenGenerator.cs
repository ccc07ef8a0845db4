// The generation engine: batched prefill of left-padded prompts into a latent KV cache, then one decode step per token
// for the whole batch (absorbed MLA attention over the cache, sampling on the device, one small host copy of the new
// ids and log-probs per step for stop checks). Finished rows are dropped from the batch once enough have finished.
// Greedy decoding can use MTP speculative decoding (MtpSpeculativeLoop: a static-shape draft-and-verify step, captured
// as a CUDA graph where graphs are available). Runs under no_grad; the model's weights
// must not change during a call. Not thread-safe: one Generate at a time per instance.
using System.Diagnostics;
using PostTrain.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

public sealed class TokenGenerator
{
    private readonly DeepSeekForCausalLM model;

    public GenerationOptions Options { get; }
    /// <summary>Counters and timings of the last <see cref="Generate"/> call.</summary>
    public GenerationStats LastStats { get; private set; } = new();

    public TokenGenerator(DeepSeekForCausalLM model, GenerationOptions? options = null)
    {
        this.model = model;
        Options = options ?? new GenerationOptions();
        Options.Validate();
        if (Options.SpeculativeMtp && model.Mtp.Count == 0)
            throw new ArgumentException("GenerationOptions.SpeculativeMtp needs a model with an MTP module (num_nextn_predict_layers >= 1)");
    }

    /// <summary>Generates a completion for every prompt (token ids, each non-empty). Results are in prompt order.</summary>
    public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<int[]> prompts, SamplingParams p, CancellationToken ct = default) =>
        Generate(prompts, p, onToken: null, ct);

    /// <summary>As above, calling <paramref name="onToken"/> (when given) for every token as it is appended to its
    /// row, for streaming; returning false from it ends that row there (see <see cref="TokenCallback"/>).</summary>
    public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<int[]> prompts, SamplingParams p, TokenCallback? onToken, CancellationToken ct = default)
    {
        p.Validate();
        ValidatePrompts(prompts);
        if (Options.SpeculativeMtp && !p.IsGreedy)
            throw new ArgumentException($"GenerationOptions.SpeculativeMtp supports greedy decoding only (SamplingParams.Temperature = 0, got {p.Temperature})");
        var stopIds = p.StopTokenIds ?? (model.Config.EosTokenId is int eos ? [eos] : []);
        var stop = new StopCriteria(stopIds, p.StopStrings, Options.Decoder, p.MaxNewTokens, onToken);

        var stats = new GenerationStats { Sequences = prompts.Count, PromptTokens = prompts.Sum(x => (long)x.Length) };
        LastStats = stats;
        var device = model.HeadWeight.device;
        var timer = new PhaseTimer(Options.Profile, device, stats);
        var states = prompts.Select((x, i) => new SequenceState(i) { PromptLength = x.Length }).ToArray();
        long start = Stopwatch.GetTimestamp();

        using var noGrad = no_grad();
        using var routing = Options.RecordRouting ? new RouterChoices(model) : null;
        using var weights = new InferenceWeights(model.ComputeDtype);
        var cm = new CachedModel(model, weights, timer, Options.DenseMoeMaxElements);
        bool graphs = Options.UseCudaGraphs(device);
        var run = new DecodeRun(cm, p, stop, stats, timer, Options, device, graphs ? StepMode.CudaGraph
            : Options.StaticDecodeStep ? StepMode.Static : StepMode.Eager);
        for (int first = 0; first < prompts.Count; first += Options.MaxBatchSize)
        {
            var chunk = states.Skip(first).Take(Options.MaxBatchSize).ToList();
            var chunkPrompts = chunk.Select(s => prompts[s.PromptIndex]).ToList();
            if (Options.SpeculativeMtp) MtpSpeculativeLoop.Run(run, chunk, chunkPrompts, graphs, ct);
            else RunSampling(run, chunk, chunkPrompts, ct);
        }
        stats.TotalSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        stats.GeneratedTokens = states.Sum(s => (long)s.Tokens.Count);
        return states.Select(s => s.ToResult()).ToArray();
    }

    /// <summary>Plain decoding: one token per row per step.</summary>
    private static void RunSampling(DecodeRun run, List<SequenceState> rows, IReadOnlyList<int[]> prompts, CancellationToken ct)
    {
        var (cm, p, device) = (run.Model, run.Params, run.Device);
        using var batch = new PromptBatch(prompts, device);
        int P = batch.MaxLength;
        using var cache = cm.NewCache(batch.Batch, P + p.MaxNewTokens, withMtp: false, device);
        if (run.Options.RecordRouting) cache.RecordRouting(cm.MoeLayerCount, cm.Model.Config.NumExpertsPerTok);
        Tensor logits, pos;   // (B, V) fp32 next-token logits; (B) position of the next token
        var rowKeys = tensor(rows.Select(r => p.FirstRowKey + r.PromptIndex).ToArray(), device: device).DetachFromDisposeScope();   // (B)
        long t0 = Stopwatch.GetTimestamp();
        using (var scope = NewDisposeScope())
        {
            cache.MarkNew(batch.Valid);
            var hidden = cm.Extend(batch.Ids, batch.Positions, cache, cache.Bias(P));   // (B, P, H)
            cache.Advance(P);
            logits = cm.Logits(hidden.narrow(1, P - 1, 1)).squeeze(1).DetachFromDisposeScope();
            pos = batch.Lengths.clone().DetachFromDisposeScope();
        }
        run.Timer.Sync();
        run.Stats.PrefillSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
        run.Timer.Detail = true;
        t0 = Stopwatch.GetTimestamp();
        try
        {
            for (int step = 0; ; step++)
            {
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                Tensor tok, lp;
                using (run.Timer.Phase("sampling")) (tok, lp) = Sampler.Sample(logits, p, rowKeys, step);   // (B), (B)
                using (run.Timer.Phase("host")) run.AppendTokens(rows, tok, lp);
                run.ReadRouting(rows, cache, P);
                if (rows.All(r => r.Done)) break;
                var keep = run.RowsToKeep(rows);
                if (keep is not null)
                {
                    cache.KeepRows(keep);
                    tok = tok.index_select(0, keep);
                    Replace(ref pos, pos.index_select(0, keep));
                    Replace(ref rowKeys, rowKeys.index_select(0, keep));
                }
                if (run.Mode != StepMode.Eager)
                {
                    StaticDecodeLoop.Run(run, rows, cache, tok, pos, rowKeys, graphs: run.Mode == StepMode.CudaGraph, P, ct);
                    break;
                }
                long n = tok.shape[0];
                cache.MarkNew(ones(n, 1, dtype: ScalarType.Bool, device: device));
                var hidden = cm.Extend(tok.view(n, 1), pos.view(n, 1), cache, cache.Bias(1));   // (B, 1, H)
                cache.Advance(1);
                Replace(ref logits, cm.Logits(hidden).squeeze(1));
                Replace(ref pos, pos + 1);
                run.Stats.DecodeSteps++;
            }
        }
        finally
        {
            logits.Dispose();
            pos.Dispose();
            rowKeys.Dispose();
            run.Timer.Detail = false;
            run.Stats.DecodeSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
    }

    /// <summary>Swaps a loop-carried tensor for its next value (taken out of the step's dispose scope).</summary>
    internal static void Replace(ref Tensor t, Tensor next)
    {
        next.DetachFromDisposeScope();
        t.Dispose();
        t = next;
    }

    private void ValidatePrompts(IReadOnlyList<int[]> prompts)
    {
        if (prompts.Count == 0) throw new ArgumentException("Generate: no prompts");
        int vocab = model.Config.VocabSize;
        for (int i = 0; i < prompts.Count; i++)
        {
            if (prompts[i] is null || prompts[i].Length == 0) throw new ArgumentException($"Generate: prompt {i} is empty");
            for (int j = 0; j < prompts[i].Length; j++)
                if (prompts[i][j] < 0 || prompts[i][j] >= vocab)
                    throw new ArgumentException($"Generate: prompt {i}, position {j}: token id {prompts[i][j]} is outside the vocabulary [0, {vocab})");
        }
    }
}

/// <summary>How plain decoding runs its steps after the first: eager, the static-shape step (StaticDecodeLoop), or
/// that step captured as a CUDA graph. Speculative decoding always runs its static-shape step, captured or not.</summary>
internal enum StepMode { Eager, Static, CudaGraph }

/// <summary>What one Generate call's decode loops share.</summary>
internal sealed record DecodeRun(CachedModel Model, SamplingParams Params, StopCriteria Stop, GenerationStats Stats,
    PhaseTimer Timer, GenerationOptions Options, Device Device, StepMode Mode = StepMode.Eager)
{
    /// <summary>Copies one step's tokens and log-probs, (B) each, to the host in one transfer and appends them to the
    /// rows (stop checks, streaming callbacks).</summary>
    public void AppendTokens(List<SequenceState> rows, Tensor tokens, Tensor logProbs)
    {
        using var scope = NewDisposeScope();
        var host = cat([tokens.to(ScalarType.Float64), logProbs.to(ScalarType.Float64)]).cpu().data<double>().ToArray();
        int B = rows.Count;
        for (int b = 0; b < B; b++) Stop.Append(rows[b], (int)host[b], (float)host[B + b]);
    }

    /// <summary>With routing recorded: the trace of every row that has just finished (its prompt's columns, left-padded
    /// to <paramref name="promptColumns"/>, then its fed completion tokens), read before compaction drops the row.</summary>
    public void ReadRouting(List<SequenceState> rows, LatentKvCache cache, int promptColumns)
    {
        if (!cache.RecordsRouting) return;
        var finished = Enumerable.Range(0, rows.Count).Where(b => rows[b].Done && rows[b].Routing is null).ToList();
        if (finished.Count == 0) return;
        var all = cache.ReadExperts(finished.Select(b => (long)b).ToList());      // (layer, row, column, k): one copy per step
        int L = Model.MoeLayerCount, k = Model.Model.Config.NumExpertsPerTok, n = finished.Count, cols = cache.Cursor;
        for (int i = 0; i < n; i++)
        {
            var r = rows[finished[i]];
            int positions = r.PromptLength + r.Tokens.Count - 1;              // the last token is never fed
            int start = promptColumns - r.PromptLength;                       // prompts are left-padded to promptColumns
            var trace = new short[L * positions * k];
            for (int l = 0; l < L; l++)
                Array.Copy(all, ((long)(l * n + i) * cols + start) * k, trace, (long)l * positions * k, (long)positions * k);
            r.Routing = new RoutingTrace(L, k, positions, trace);
        }
    }

    /// <summary>When enough rows have finished, drops them from <paramref name="rows"/> and returns the int64 indices
    /// (on the device) of the rows kept, to apply to the cache and per-row tensors; else null.</summary>
    public Tensor? RowsToKeep(List<SequenceState> rows)
    {
        int done = rows.Count(r => r.Done);
        if (done == 0 || done < Math.Ceiling(Options.CompactFinishedFraction * rows.Count)) return null;
        var keep = Enumerable.Range(0, rows.Count).Where(i => !rows[i].Done).Select(i => (long)i).ToArray();
        var kept = keep.Select(i => rows[(int)i]).ToList();
        rows.Clear();
        rows.AddRange(kept);
        return tensor(keep, device: Device);
    }
}
