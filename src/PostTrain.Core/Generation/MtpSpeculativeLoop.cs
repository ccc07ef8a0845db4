// Greedy decoding with MTP self-speculation (one draft per step). State per row: the pending token `a` (emitted, not
// yet in the cache) at position p, and the MTP draft `d` for position p + 1. A step runs the main model on [a, d]
// (two cache columns) and takes g = argmax at both: g1 is the true token after a; if g1 == d the draft is accepted
// and g2 (the token after d) is also emitted. The MTP module then runs on the same two columns with
// (main hidden, embedding of the token one ahead) = (h_a, g1), (h_d, g2) and drafts the next token from the last
// valid column. A rejected draft's column stays in the cache but is marked invalid (for the main and the MTP layer),
// so later queries never see it. Emits exactly the tokens of plain greedy decoding (up to ties at fp rounding).
// Cache columns: prompt + 2 per step.
using System.Diagnostics;
using static PostTrain.Core.Generation.TokenGenerator;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal static class MtpSpeculativeLoop
{
    public static void Run(DecodeRun run, List<SequenceState> rows, IReadOnlyList<int[]> prompts, CancellationToken ct)
    {
        var (cm, p, device) = (run.Model, run.Params, run.Device);
        using var batch = new PromptBatch(prompts, device);
        int P = batch.MaxLength;
        using var cache = cm.NewCache(batch.Batch, P + 2 * p.MaxNewTokens + 2, withMtp: true, device);
        Tensor pending, draft, pos;   // (B) int64 each: token a, draft d, position of a
        long t0 = Stopwatch.GetTimestamp();
        using (var scope = NewDisposeScope())
        {
            long B = batch.Batch;
            cache.MarkNew(batch.Valid);
            var bias = cache.Bias(P);
            var hidden = cm.Extend(batch.Ids, batch.Positions, cache, bias);              // (B, P, H)
            var logits = cm.Logits(hidden.narrow(1, P - 1, 1)).squeeze(1);               // (B, V)
            var g0 = logits.argmax(-1);                                                   // (B)
            var lp0 = logits.log_softmax(-1).gather(1, g0.unsqueeze(1)).squeeze(1);
            var ahead = cat([batch.Ids.narrow(1, 1, P - 1), g0.unsqueeze(1)], 1);         // (B, P) token one ahead
            var (_, mtpLogits) = cm.ExtendMtp(hidden, ahead, batch.Positions, cache, bias, lastOnly: true);
            cache.Advance(P);
            draft = mtpLogits.squeeze(1).argmax(-1).DetachFromDisposeScope();
            pending = g0.DetachFromDisposeScope();
            pos = batch.Lengths.clone().DetachFromDisposeScope();
            run.AppendTokens(rows, g0, lp0);
        }
        run.Stats.PrefillSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
        run.Timer.Detail = true;
        t0 = Stopwatch.GetTimestamp();
        try
        {
            while (!rows.All(r => r.Done))
            {
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var keep = run.RowsToKeep(rows);
                if (keep is not null)
                {
                    cache.KeepRows(keep);
                    Replace(ref pending, pending.index_select(0, keep));
                    Replace(ref draft, draft.index_select(0, keep));
                    Replace(ref pos, pos.index_select(0, keep));
                }
                long B = pending.shape[0];
                var ids = stack([pending, draft], 1);                                     // (B, 2)
                var positions = stack([pos, pos + 1], 1);                                 // (B, 2)
                cache.MarkNew(ones(B, 2, dtype: ScalarType.Bool, device: device));
                var bias = cache.Bias(2);
                var hidden = cm.Extend(ids, positions, cache, bias);                      // (B, 2, H)
                var logits = cm.Logits(hidden);                                           // (B, 2, V)
                Tensor g, lp, accepted, nextDraft;
                using (run.Timer.Phase("sampling"))
                {
                    g = logits.argmax(-1);                                                // (B, 2)
                    lp = logits.log_softmax(-1).gather(2, g.unsqueeze(-1)).squeeze(-1);   // (B, 2)
                    accepted = g.select(1, 0) == draft;                                   // (B) bool
                }
                var (_, mtpLogits) = cm.ExtendMtp(hidden, g, positions, cache, bias, lastOnly: false);
                cache.Advance(2);
                cache.SetValid(cache.Cursor - 1, accepted);
                var drafts = mtpLogits.argmax(-1);                                        // (B, 2)
                nextDraft = where(accepted, drafts.select(1, 1), drafts.select(1, 0));
                Replace(ref pending, where(accepted, g.select(1, 1), g.select(1, 0)));
                Replace(ref draft, nextDraft);
                Replace(ref pos, pos + 1 + accepted.to(ScalarType.Int64));
                run.Stats.DecodeSteps++;

                using (run.Timer.Phase("host"))
                {
                    var host = cat([g.reshape(-1).to(ScalarType.Float64), lp.reshape(-1).to(ScalarType.Float64),
                        accepted.to(ScalarType.Float64)]).cpu().data<double>().ToArray();
                    for (int b = 0; b < B; b++)
                    {
                        var row = rows[b];
                        if (row.Done) continue;
                        bool acc = host[4 * B + b] != 0;
                        run.Stats.DraftsProposed++;
                        if (acc) run.Stats.DraftsAccepted++;
                        if (!run.Stop.Append(row, (int)host[2 * b], (float)host[2 * B + 2 * b]) && acc)
                            run.Stop.Append(row, (int)host[2 * b + 1], (float)host[2 * B + 2 * b + 1]);
                    }
                }
            }
        }
        finally
        {
            pending.Dispose(); draft.Dispose(); pos.Dispose();
            run.Timer.Detail = false;
            run.Stats.DecodeSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
    }
}
