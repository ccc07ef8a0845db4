// One training row: several examples (packed) or one (unpacked), padded to a fixed length.
// Labels are aligned with the inputs, already shifted: Labels[t] is the token to predict at position t,
// i.e. InputIds[t + 1] when that token is trained and belongs to the same example, else -100 (ignored).
// So the loss is cross_entropy(logits[t], Labels[t], ignore_index: -100) with no further shift.
// PositionIds restart at 0 for each example. SequenceIds number the examples of the row 0, 1, 2, ...
// (-1 on padding): attention is allowed from t to s iff s <= t and SequenceIds[s] == SequenceIds[t] >= 0,
// a block-diagonal causal mask.
namespace PostTrain.Data.Packing;

public sealed record PackedRow(int[] InputIds, int[] Labels, int[] PositionIds, int[] SequenceIds)
{
    public const int IgnoreIndex = -100;

    /// <summary>Tokens that belong to examples (the rest is padding at the end).</summary>
    public int Length => Array.IndexOf(SequenceIds, -1) is var pad and >= 0 ? pad : SequenceIds.Length;

    /// <summary>Number of examples in the row.</summary>
    public int ExampleCount => Length == 0 ? 0 : SequenceIds[Length - 1] + 1;

    /// <summary>Length of each example in order, e.g. for flash-attention's cumulative sequence lengths.</summary>
    public int[] SegmentLengths()
    {
        var lengths = new int[ExampleCount];
        for (var t = 0; t < Length; t++) lengths[SequenceIds[t]]++;
        return lengths;
    }

    /// <summary>May position <paramref name="query"/> attend to <paramref name="key"/>?</summary>
    public bool CanAttend(int query, int key) =>
        key <= query && SequenceIds[key] >= 0 && SequenceIds[key] == SequenceIds[query];
}
