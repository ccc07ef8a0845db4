// Turns rendered examples into fixed-length training rows.
// BestFit: best-fit-decreasing bin packing over a window of `window` examples at a time (streaming: only
// the window is in memory): the window's examples, longest first, each go into the open row with the least
// room that still fits them, else into a new row; then the window's rows are emitted in the order opened.
// Unpacked: one example per row. Both truncate examples longer than maxLength (keeping the start; counted
// in DataStats.Truncated) and drop examples with no trained target left (DataStats.Dropped).
using PostTrain.Data.Templates;

namespace PostTrain.Data.Packing;

public static class Packer
{
    public static IEnumerable<PackedRow> BestFit(IEnumerable<TokenizedExample> examples, int maxLength, int padId,
        int window = 1024, DataStats? stats = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        var buffer = new List<TokenizedExample>(window);
        foreach (var example in examples)
        {
            var fitted = Fit(example, maxLength, stats);
            if (fitted is null) continue;
            buffer.Add(fitted);
            if (buffer.Count < window) continue;
            foreach (var row in PackWindow(buffer, maxLength, padId)) yield return row;
            buffer.Clear();
        }
        foreach (var row in PackWindow(buffer, maxLength, padId)) yield return row;
    }

    /// <summary>One example per row, padded to <paramref name="maxLength"/>, or to its own length when
    /// <paramref name="padToMaxLength"/> is false (a batcher then pads to the batch's longest row).</summary>
    public static IEnumerable<PackedRow> Unpacked(IEnumerable<TokenizedExample> examples, int maxLength, int padId,
        bool padToMaxLength = true, DataStats? stats = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        foreach (var example in examples)
        {
            var fitted = Fit(example, maxLength, stats);
            if (fitted is null) continue;
            yield return Build([fitted], padToMaxLength ? maxLength : fitted.Length, padId);
        }
    }

    /// <summary>Labels of one example: Labels[t] = ids[t+1] if token t+1 is trained, else -100; last = -100.</summary>
    public static int[] ShiftedLabels(TokenizedExample example)
    {
        var labels = new int[example.Length];
        for (var t = 0; t < labels.Length; t++)
            labels[t] = t + 1 < labels.Length && example.TrainMask[t + 1] ? example.InputIds[t + 1] : PackedRow.IgnoreIndex;
        return labels;
    }

    /// <summary>Best-fit decreasing assignment of lengths to bins of capacity <paramref name="capacity"/>:
    /// the indexes of the items in each bin, bins in the order opened, items in the order placed.</summary>
    public static List<List<int>> AssignBestFitDecreasing(IReadOnlyList<int> lengths, int capacity)
    {
        var order = Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).ThenBy(i => i);
        var bins = new List<List<int>>();
        var room = new List<int>();
        foreach (var item in order)
        {
            var best = -1;
            for (var b = 0; b < bins.Count; b++)
                if (room[b] >= lengths[item] && (best < 0 || room[b] < room[best])) best = b;
            if (best < 0)
            {
                bins.Add([]);
                room.Add(capacity);
                best = bins.Count - 1;
            }
            bins[best].Add(item);
            room[best] -= lengths[item];
        }
        return bins;
    }

    private static IEnumerable<PackedRow> PackWindow(List<TokenizedExample> buffer, int maxLength, int padId)
    {
        if (buffer.Count == 0) yield break;
        var bins = AssignBestFitDecreasing([.. buffer.Select(e => e.Length)], maxLength);
        foreach (var bin in bins) yield return Build([.. bin.Select(i => buffer[i])], maxLength, padId);
    }

    private static TokenizedExample? Fit(TokenizedExample example, int maxLength, DataStats? stats)
    {
        if (example.Length > maxLength)
        {
            stats?.AddTruncated();
            example = new TokenizedExample(example.InputIds[..maxLength], example.TrainMask[..maxLength]);
        }
        // Token 0 is never predicted (nothing precedes it inside the example).
        if (!example.TrainMask.Skip(1).Any(m => m))
        {
            stats?.AddDropped();
            return null;
        }
        return example;
    }

    private static PackedRow Build(IReadOnlyList<TokenizedExample> examples, int length, int padId)
    {
        var ids = new int[length];
        var labels = new int[length];
        var positions = new int[length];
        var sequences = new int[length];
        Array.Fill(ids, padId);
        Array.Fill(labels, PackedRow.IgnoreIndex);
        Array.Fill(sequences, -1);
        var at = 0;
        for (var e = 0; e < examples.Count; e++)
        {
            var example = examples[e];
            example.InputIds.CopyTo(ids, at);
            ShiftedLabels(example).CopyTo(labels, at);
            for (var t = 0; t < example.Length; t++)
            {
                positions[at + t] = t;
                sequences[at + t] = e;
            }
            at += example.Length;
        }
        return new PackedRow(ids, labels, positions, sequences);
    }
}
