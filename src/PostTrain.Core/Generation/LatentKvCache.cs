// The MLA latent KV cache: per layer and token only the normed latent (kv_lora_rank) and the rotated shared k_rope
// (qk_rope_head_dim), (B, Tmax, r + dr), preallocated. All rows share the column cursor (prompts are left-padded to
// one length and every step appends the same number of columns to every row); a (B, Tmax) validity mask marks the
// columns a row may attend to (false for left padding and for rejected speculative drafts). Positions (RoPE) are
// per row and are applied before writing, so holes in the columns do not matter.
// Layers 0..L-1 are the decoder layers; layer L (when present) is the first MTP module's block.
// Optionally (RecordRouting) it also keeps, per MoE layer and column, the k experts the column's token was routed to,
// written and compacted with the KV entries, for routing replay.
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

public sealed class LatentKvCache : IDisposable
{
    private Tensor[] layers;   // each (B, Tmax, r + dr)
    private Tensor valid;      // (B, Tmax) bool
    private Tensor[] experts = [];   // per MoE layer (B, Tmax, k) int16, -1 where unwritten (only when recording routing)

    public int LayerCount => layers.Length;
    public long Batch { get; private set; }
    public int Capacity { get; }
    public int LatentDim { get; }
    public int RopeDim { get; }
    /// <summary>Columns written so far (the next write goes here).</summary>
    public int Cursor { get; private set; }

    public LatentKvCache(int layerCount, long batch, int capacity, int latentDim, int ropeDim, ScalarType dtype, Device device)
    {
        if (layerCount < 1 || batch < 1 || capacity < 1) throw new ArgumentException($"LatentKvCache: bad shape (layers {layerCount}, batch {batch}, capacity {capacity})");
        LatentDim = latentDim; RopeDim = ropeDim; Capacity = capacity; Batch = batch;
        layers = new Tensor[layerCount];
        for (int i = 0; i < layerCount; i++)
            layers[i] = zeros([batch, capacity, latentDim + ropeDim], dtype: dtype, device: device).DetachFromDisposeScope();
        valid = zeros([batch, capacity], dtype: ScalarType.Bool, device: device).DetachFromDisposeScope();
    }

    /// <summary>Static-shape mode, for a decode step captured as a CUDA graph: when set, the T new columns are written at
    /// these (T) int64 device indices (consecutive, ascending) instead of at the host cursor; <see cref="Append"/>
    /// returns the whole buffer (B, Capacity, r + dr), <see cref="MarkNew"/> marks those columns and <see cref="Bias"/>
    /// spans all Capacity columns (unwritten ones are invalid, so the result equals the dynamic form). The host
    /// <see cref="Cursor"/> still counts the columns (<see cref="Advance"/>); the device indices are the caller's to
    /// advance. T = 1 for plain decoding, 2 for MTP speculative verification.</summary>
    public Tensor? DeviceColumns { get; set; }

    /// <summary>Starts recording, per column, the experts of <paramref name="moeLayers"/> MoE layers (k each).</summary>
    public void RecordRouting(int moeLayers, int topK)
    {
        foreach (var e in experts) e.Dispose();
        experts = Enumerable.Range(0, moeLayers)
            .Select(_ => full([Batch, Capacity, topK], -1, dtype: ScalarType.Int16, device: valid.device).DetachFromDisposeScope()).ToArray();
    }

    public bool RecordsRouting => experts.Length > 0;

    /// <summary>Writes the experts (B, T, k) int64 of the T tokens being appended (same columns as <see cref="Append"/>).</summary>
    public void AppendExperts(int moeLayer, Tensor idx)
    {
        using var scope = NewDisposeScope();
        long t = idx.shape[1];
        var e = idx.to(ScalarType.Int16);
        if (DeviceColumns is { } cols)
        {
            RequireColumns(t);
            experts[moeLayer].index_copy_(1, cols, e);
        }
        else experts[moeLayer].narrow(1, Cursor, t).copy_(e);
    }

    /// <summary>The recorded experts of the given rows at columns 0..Cursor-1 of every MoE layer, in one device-to-host
    /// copy: (layer, row, column, k) int16, row in the order given.</summary>
    public short[] ReadExperts(IReadOnlyList<long> rows)
    {
        using var scope = NewDisposeScope();
        var index = tensor(rows.ToArray(), device: valid.device);
        return stack(experts.Select(e => e.index_select(0, index).narrow(1, 0, Cursor)).ToArray()).cpu().data<short>().ToArray();
    }

    /// <summary>Valid (attendable) tokens per row, (B) int64.</summary>
    public Tensor Lengths() => valid.narrow(1, 0, Cursor).sum(1);

    /// <summary>Marks the validity of the next T columns, newValid (B, T) bool. Call before building the bias; calling
    /// it again after the forward re-marks the same columns (a rejected speculative draft's column becomes invalid).</summary>
    public void MarkNew(Tensor newValid)
    {
        long t = newValid.shape[1];
        EnsureRoom(t);
        if (DeviceColumns is { } cols)
        {
            RequireColumns(t);
            valid.index_copy_(1, cols, newValid);
        }
        else valid.narrow(1, Cursor, t).copy_(newValid);
    }

    /// <summary>Additive fp32 attention bias (B, 1, T, Cursor + T) for T new queries at columns Cursor..Cursor+T-1:
    /// 0 where the key is valid and not in the future, -inf elsewhere; a query always sees its own column.</summary>
    public Tensor Bias(long t)
    {
        using var scope = NewDisposeScope();
        if (DeviceColumns is { } cols)
        {
            RequireColumns(t);
            var notValid = valid.logical_not().view(Batch, 1, 1, Capacity);                    // (B, 1, 1, Cap)
            if (t > 1)   // the new columns are the last written ones: a query must not see the ones after it
                notValid = notValid | (arange(Capacity, device: valid.device).view(1, 1, 1, Capacity) > cols.view(1, 1, t, 1));
            return zeros([Batch, 1, t, Capacity], dtype: ScalarType.Float32, device: valid.device)
                .masked_fill_(notValid, double.NegativeInfinity).MoveToOuterDisposeScope();
        }
        long s = Cursor + t;
        var device = valid.device;
        var qPos = arange(Cursor, s, device: device).view(1, 1, t, 1);               // (1, 1, T, 1)
        var kPos = arange(0, s, device: device).view(1, 1, 1, s);                    // (1, 1, 1, S)
        var allowed = valid.narrow(1, 0, s).view(Batch, 1, 1, s) & (kPos <= qPos);   // (B, 1, T, S)
        allowed = allowed | (kPos == qPos);
        var bias = zeros([Batch, 1, t, s], dtype: ScalarType.Float32, device: device)
            .masked_fill_(allowed.logical_not(), double.NegativeInfinity);
        return bias.MoveToOuterDisposeScope();
    }

    /// <summary>Writes entry (B, T, r + dr) at columns Cursor..Cursor+T-1 of a layer; returns that layer's keys so far,
    /// (B, Cursor + T, r + dr) (a view of the cache).</summary>
    public Tensor Append(int layer, Tensor entry)
    {
        long t = entry.shape[1];
        return AppendWith(layer, t, (cache, cols, cursor) =>
        {
            if (cols is not null) cache.index_copy_(1, cols, entry);
            else cache.narrow(1, cursor, t).copy_(entry);
        });
    }

    /// <summary>Append with the writing left to <paramref name="write"/>: it gets the layer's whole cache tensor
    /// (B, Capacity, r + dr) and either the device columns (T) to write (the static step) or, when those are null, the
    /// cursor (write columns cursor..cursor+T-1). Returns the layer's keys as Append does.</summary>
    public Tensor AppendWith(int layer, long t, Action<Tensor, Tensor?, long> write)
    {
        EnsureRoom(t);
        if (DeviceColumns is { } cols)
        {
            RequireColumns(t);
            write(layers[layer], cols, 0);
            return layers[layer];
        }
        write(layers[layer], null, Cursor);
        return layers[layer].narrow(1, 0, Cursor + t);
    }

    /// <summary>Commits T columns written with <see cref="Append"/>.</summary>
    public void Advance(int t) { EnsureRoom(t); Cursor += t; }

    /// <summary>Keeps only the given rows (int64 indices into the current batch), e.g. to drop finished sequences.</summary>
    public void KeepRows(Tensor rows)
    {
        using var scope = NewDisposeScope();
        for (int i = 0; i < layers.Length; i++)
        {
            var kept = layers[i].index_select(0, rows).DetachFromDisposeScope();
            layers[i].Dispose();
            layers[i] = kept;
        }
        for (int i = 0; i < experts.Length; i++)
        {
            var kept = experts[i].index_select(0, rows).DetachFromDisposeScope();
            experts[i].Dispose();
            experts[i] = kept;
        }
        var v = valid.index_select(0, rows).DetachFromDisposeScope();
        valid.Dispose();
        valid = v;
        Batch = rows.shape[0];
    }

    private void RequireColumns(long t)
    {
        if (t != DeviceColumns!.shape[0])
            throw new InvalidOperationException($"LatentKvCache: the device-column mode writes {DeviceColumns.shape[0]} columns per step (got {t})");
    }

    private void EnsureRoom(long t)
    {
        if (Cursor + t > Capacity) throw new InvalidOperationException($"LatentKvCache: {Cursor} + {t} columns exceed the capacity {Capacity}");
    }

    public void Dispose()
    {
        foreach (var l in layers) l.Dispose();
        foreach (var e in experts) e.Dispose();
        valid.Dispose();
        layers = [];
        experts = [];
    }
}
