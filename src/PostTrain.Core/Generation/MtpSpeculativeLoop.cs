// Greedy decoding with MTP self-speculation (one draft per step). Prefill (eager, dynamic shapes): the main model
// over the left-padded prompts gives the first token g0 (emitted) and the MTP module, fed the prompt shifted by one
// plus g0, drafts the token after it. Then every step is the static-shape MtpSpeculativeStep (verify [pending, draft]
// in one 2-column forward, acceptance on the device), run eagerly or captured as a CUDA graph and replayed
// (CapturedStep). After each step the host copies the step's two tokens, their log-probs and the emitted count per row
// in one transfer for the stop checks and the acceptance counters; compacting finished rows recaptures.
// Cache columns: prompt + 2 per step.
using System.Diagnostics;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal static class MtpSpeculativeLoop
{
    public static void Run(DecodeRun run, List<SequenceState> rows, IReadOnlyList<int[]> prompts, bool graphs, CancellationToken ct)
    {
        var (cm, p, device) = (run.Model, run.Params, run.Device);
        using var batch = new PromptBatch(prompts, device);
        int P = batch.MaxLength;
        // each step emits >= 1 token per live row, so at most MaxNewTokens - 1 steps of 2 columns follow the prefill
        using var cache = cm.NewCache(batch.Batch, P + 2 * p.MaxNewTokens, withMtp: true, device);
        MtpSpeculativeStep state;
        long t0 = Stopwatch.GetTimestamp();
        using (var scope = NewDisposeScope())
        {
            cache.MarkNew(batch.Valid);
            var bias = cache.Bias(P);
            var hidden = cm.Extend(batch.Ids, batch.Positions, cache, bias);              // (B, P, H)
            var logits = cm.Logits(hidden.narrow(1, P - 1, 1)).squeeze(1);               // (B, V)
            var g0 = logits.argmax(-1);                                                   // (B)
            var lp0 = logits.log_softmax(-1).gather(1, g0.unsqueeze(1)).squeeze(1);       // (B)
            var ahead = cat([batch.Ids.narrow(1, 1, P - 1), g0.unsqueeze(1)], 1);         // (B, P) token one ahead
            var (_, mtpLogits) = cm.ExtendMtp(hidden, ahead, batch.Positions, cache, bias, lastOnly: true);
            cache.Advance(P);
            run.AppendTokens(rows, g0, lp0);
            state = new MtpSpeculativeStep(cm, cache, g0, mtpLogits.squeeze(1).argmax(-1), batch.Lengths);
        }
        run.Stats.PrefillSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
        run.Timer.Detail = true;
        t0 = Stopwatch.GetTimestamp();
        try
        {
            if (!rows.All(r => r.Done)) Decode(run, rows, cache, state, graphs, ct);
        }
        finally
        {
            state.Dispose();
            run.Timer.Detail = false;
            run.Stats.DecodeSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
    }

    /// <summary>Speculative steps until every row is done.</summary>
    private static void Decode(DecodeRun run, List<SequenceState> rows, LatentKvCache cache, MtpSpeculativeStep state, bool graphs,
        CancellationToken ct)
    {
        using var step = new CapturedStep(state.Run, graphs, run.Device, run.Stats, prefix: "mtp-");
        while (!rows.All(r => r.Done))
        {
            ct.ThrowIfCancellationRequested();
            using var keep = run.RowsToKeep(rows);
            if (keep is not null)
            {
                step.Reshaped();
                state.KeepRows(keep);
            }
            step.Run();
            cache.Advance(2);
            run.Stats.DecodeSteps++;
            using (run.Timer.Phase("host")) AppendStep(run, rows, state);
        }
    }

    /// <summary>Copies the step's tokens (B, 2), log-probs (B, 2) and emitted counts (B) to the host in one transfer,
    /// appends each live row's 1 or 2 tokens (the second only if the first did not end the row) and counts its draft.</summary>
    private static void AppendStep(DecodeRun run, List<SequenceState> rows, MtpSpeculativeStep state)
    {
        using var scope = NewDisposeScope();
        var host = cat([state.OutTokens.reshape(-1).to(ScalarType.Float64), state.OutLogProbs.reshape(-1).to(ScalarType.Float64),
            state.OutCount.to(ScalarType.Float64)]).cpu().data<double>().ToArray();
        int B = rows.Count;
        for (int b = 0; b < B; b++)
        {
            var row = rows[b];
            if (row.Done) continue;
            bool accepted = host[4 * B + b] == 2;
            run.Stats.DraftsProposed++;
            if (accepted) run.Stats.DraftsAccepted++;
            if (!run.Stop.Append(row, (int)host[2 * b], (float)host[2 * B + 2 * b]) && accepted)
                run.Stop.Append(row, (int)host[2 * b + 1], (float)host[2 * B + 2 * b + 1]);
        }
    }
}
