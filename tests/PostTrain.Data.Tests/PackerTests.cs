// Packing: best-fit-decreasing on a hand example, shifted labels, position resets, and a check that
// packing keeps every example's tokens, labels and positions exactly.
using PostTrain.Data.Packing;
using PostTrain.Data.Templates;

namespace PostTrain.Data.Tests;

public sealed class PackerTests
{
    private static TokenizedExample Example(int length, int firstId, int promptLength) =>
        new([.. Enumerable.Range(firstId, length)], [.. Enumerable.Range(0, length).Select(i => i >= promptLength)]);

    [Fact]
    public void Best_fit_decreasing_on_a_hand_example()
    {
        // Longest first: 6 -> A (room 4); 5 -> B (room 5); 4 -> A (room 4 fits exactly, tighter than 5);
        // 3 -> B (room 2); 2 -> B (room 0). Two full rows, the lower bound 20 / 10. (Input order would need 3.)
        var bins = Packer.AssignBestFitDecreasing([3, 6, 2, 5, 4], capacity: 10);
        Assert.Equal([[1, 4], [3, 0, 2]], bins);

        // Best fit, not first fit: 8 -> A (2), 7 -> B (3), 5 -> C (5), 4 -> C (1), 2 -> A (0); the last item 1
        // goes to C (room 1, the tightest) where first fit would put it in B (room 3).
        Assert.Equal([[2, 5], [0], [3, 4, 1]], Packer.AssignBestFitDecreasing([7, 1, 8, 5, 4, 2], capacity: 10));
    }

    [Fact]
    public void Labels_are_next_tokens_where_trained_and_never_cross_examples()
    {
        var a = new TokenizedExample([10, 11, 12, 13], [false, false, true, true]);
        var b = new TokenizedExample([20, 21, 22], [false, true, true]);
        Assert.Equal([-100, 12, 13, -100], Packer.ShiftedLabels(a));

        var row = Assert.Single(Packer.BestFit([a, b], maxLength: 9, padId: 0));

        Assert.Equal([10, 11, 12, 13, 20, 21, 22, 0, 0], row.InputIds);
        Assert.Equal([-100, 12, 13, -100, 21, 22, -100, -100, -100], row.Labels);
        Assert.Equal([0, 1, 2, 3, 0, 1, 2, 0, 0], row.PositionIds);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, -1, -1], row.SequenceIds);
        Assert.Equal([4, 3], row.SegmentLengths());
        Assert.Equal(7, row.Length);
        Assert.True(row.CanAttend(3, 0));
        Assert.False(row.CanAttend(4, 3)); // the second example cannot see the first
        Assert.False(row.CanAttend(0, 1)); // causal
        Assert.False(row.CanAttend(8, 8)); // padding
    }

    [Fact]
    public void Truncation_and_dropping_are_counted()
    {
        var stats = new DataStats();
        var rows = Packer.Unpacked([Example(12, 100, 2), Example(6, 200, 8), Example(4, 300, 1)], maxLength: 8, padId: 0,
            padToMaxLength: false, stats: stats).ToList();

        Assert.Equal(2, rows.Count); // the second has no trained token
        Assert.Equal(Enumerable.Range(100, 8), rows[0].InputIds);
        Assert.Equal(4, rows[1].InputIds.Length);
        Assert.Equal(1, stats.Truncated);
        Assert.Equal(1, stats.Dropped);
    }

    [Fact]
    public void Packing_preserves_every_example_exactly()
    {
        var rng = new Random(7);
        var examples = Enumerable.Range(0, 300).Select(i =>
        {
            var length = rng.Next(2, 70);
            var ids = Enumerable.Range(0, length).Select(_ => rng.Next(1, 1000)).ToArray();
            var mask = Enumerable.Range(0, length).Select(t => t >= length / 3).ToArray();
            return new TokenizedExample(ids, mask);
        }).ToList();
        const int maxLength = 64;
        var stats = new DataStats();

        var rows = Packer.BestFit(examples, maxLength, padId: 0, window: 50, stats: stats).ToList();

        var expected = examples.Select(e => e.Length > maxLength ? new TokenizedExample(e.InputIds[..maxLength], e.TrainMask[..maxLength]) : e)
            .Select(e => Key(e.InputIds, Labels(e))).OrderBy(k => k).ToList();
        var found = new List<string>();
        foreach (var row in rows)
        {
            Assert.Equal(maxLength, row.InputIds.Length);
            var at = 0;
            foreach (var length in row.SegmentLengths())
            {
                Assert.Equal(Enumerable.Range(0, length), row.PositionIds[at..(at + length)]);
                found.Add(Key(row.InputIds[at..(at + length)], row.Labels[at..(at + length)]));
                at += length;
            }
            Assert.All(row.Labels[at..], l => Assert.Equal(-100, l));
        }
        Assert.Equal(expected, found.OrderBy(k => k).ToList());
        Assert.Equal(examples.Count(e => e.Length > maxLength), stats.Truncated);
        var fill = rows.Sum(r => r.Length) / (double)(rows.Count * maxLength);
        Assert.True(fill > 0.9, $"fill {fill:F3}");
    }

    // Independent of Packer.ShiftedLabels: the target at t is the token at t+1 when that token is trained.
    private static int[] Labels(TokenizedExample e) =>
        [.. Enumerable.Range(0, e.Length).Select(t => t + 1 < e.Length && e.TrainMask[t + 1] ? e.InputIds[t + 1] : -100)];

    private static string Key(int[] ids, int[] labels) => string.Join(",", ids) + "|" + string.Join(",", labels);
}
