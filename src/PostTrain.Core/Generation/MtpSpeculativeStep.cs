// One static-shape step of greedy MTP self-speculation (one draft per step), the form a CUDA graph can capture.
// Device state per row: the pending token a (emitted, not yet in the cache) at position p and the MTP draft d for
// position p + 1; shared: the two cache columns [c, c + 1] this step writes (LatentKvCache.DeviceColumns). The step:
//   main model on [a, d] at positions [p, p + 1]      -> g = argmax of the logits (B, 2), their log-probs (B, 2)
//   accepted = (g0 == d)                               (B) bool; g0 is the true greedy token after a, and when d was
//                                                       right g1 is the true one after d
//   MTP on the same columns with (h_a, g0), (h_d, g1)  -> drafts m (B, 2) for positions p + 2 and p + 3
//   column c + 1 re-marked valid = accepted            a rejected draft's column (main and MTP layers) is never
//                                                       attended again
//   emitted: g0, and g1 when accepted (count = 1 + accepted); a' = accepted ? g1 : g0, d' = accepted ? m1 : m0,
//   p' = p + count, [c, c + 1] += 2 (two columns per step whatever is accepted).
// So the emitted tokens are exactly plain greedy decoding's (up to argmax ties at fp rounding).
// Structurally sync-free: Run only launches tensor ops on device tensors the step owns or the model holds. There is
// no .item()/.data<T>() read, no host-to-device copy (no tensor(...) from host values), no shape that depends on
// device data, and no host branch on a device value (acceptance selects with where(), never with an if), so a
// captured CUDA graph replays it unchanged. The host reads OutTokens/OutLogProbs/OutCount after the step.
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal sealed class MtpSpeculativeStep : IDisposable
{
    private readonly CachedModel cm;
    private readonly LatentKvCache cache;
    private Tensor pending, draft, pos;          // (B) int64: token a, draft d, position of a
    private readonly Tensor columns;             // (2) int64: the cache columns [c, c + 1] to write
    private Tensor outTokens, outLogProbs;       // (B, 2) int64, (B, 2) fp32: [g0, g1] and their log-probs
    private Tensor outCount;                     // (B) int64: tokens emitted by the last step (1, or 2 when accepted)

    public Tensor OutTokens => outTokens;
    public Tensor OutLogProbs => outLogProbs;
    public Tensor OutCount => outCount;

    public MtpSpeculativeStep(CachedModel cm, LatentKvCache cache, Tensor pending, Tensor draft, Tensor pos)
    {
        this.cm = cm;
        this.cache = cache;
        var device = pending.device;
        long B = pending.shape[0];
        this.pending = pending.clone().DetachFromDisposeScope();
        this.draft = draft.clone().DetachFromDisposeScope();
        this.pos = pos.clone().DetachFromDisposeScope();
        columns = tensor(new long[] { cache.Cursor, cache.Cursor + 1 }, device: device).DetachFromDisposeScope();
        outTokens = zeros([B, 2], dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
        outLogProbs = zeros([B, 2], dtype: ScalarType.Float32, device: device).DetachFromDisposeScope();
        outCount = zeros([B], dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
    }

    /// <summary>Verifies the pending tokens and drafts, drafts the next ones and advances the device state. Launches
    /// device work only (capturable).</summary>
    public void Run()
    {
        using var scope = NewDisposeScope();
        long B = pending.shape[0];
        cache.DeviceColumns = columns;
        try
        {
            var ids = stack([pending, draft], 1);                                     // (B, 2)
            var positions = stack([pos, pos + 1], 1);                                 // (B, 2)
            var fresh = ones(B, 1, dtype: ScalarType.Bool, device: pending.device);   // (B, 1)
            cache.MarkNew(cat([fresh, fresh], 1));
            var bias = cache.Bias(2);                                                 // (B, 1, 2, Capacity)
            var hidden = cm.Extend(ids, positions, cache, bias);                      // (B, 2, H)
            var logits = cm.Logits(hidden);                                           // (B, 2, V)
            var g = logits.argmax(-1);                                                // (B, 2)
            var lp = logits.log_softmax(-1).gather(2, g.unsqueeze(-1)).squeeze(-1);   // (B, 2)
            var accepted = g.select(1, 0).eq(draft);                                  // (B) bool
            var (_, mtpLogits) = cm.ExtendMtp(hidden, g, positions, cache, bias, lastOnly: false);
            var drafts = mtpLogits.argmax(-1);                                        // (B, 2)
            cache.MarkNew(cat([fresh, accepted.unsqueeze(1)], 1));                    // reject: column c + 1 invalid
            var count = accepted.to(ScalarType.Int64) + 1;                            // (B)
            outTokens.copy_(g);
            outLogProbs.copy_(lp);
            outCount.copy_(count);
            pending.copy_(where(accepted, g.select(1, 1), g.select(1, 0)));
            draft.copy_(where(accepted, drafts.select(1, 1), drafts.select(1, 0)));
            pos.add_(count);
            columns.add_(2);
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
        TokenGenerator.Replace(ref pending, pending.index_select(0, keep));
        TokenGenerator.Replace(ref draft, draft.index_select(0, keep));
        TokenGenerator.Replace(ref pos, pos.index_select(0, keep));
        TokenGenerator.Replace(ref outTokens, outTokens.index_select(0, keep));
        TokenGenerator.Replace(ref outLogProbs, outLogProbs.index_select(0, keep));
        TokenGenerator.Replace(ref outCount, outCount.index_select(0, keep));
    }

    public void Dispose()
    {
        foreach (var t in new[] { pending, draft, pos, columns, outTokens, outLogProbs, outCount }) t.Dispose();
    }
}
