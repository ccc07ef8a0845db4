// Counters a data pipeline fills while streaming (rows read, rows skipped with their reasons, examples
// truncated or dropped by packing) so the caller can log them. Thread-safe; the first few skip reasons
// are kept verbatim.
namespace PostTrain.Data;

public sealed class DataStats
{
    private const int MaxReasons = 10;
    private readonly List<string> _reasons = [];
    private long _rows, _skipped, _truncated, _dropped;

    public long RowsRead => Interlocked.Read(ref _rows);
    public long Skipped => Interlocked.Read(ref _skipped);

    /// <summary>Examples cut to the maximum length by packing.</summary>
    public long Truncated => Interlocked.Read(ref _truncated);

    /// <summary>Examples dropped by packing because no token of them is trained (e.g. truncation cut the answer).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>The first skip reasons (messages of the <see cref="DataException"/>s), at most 10.</summary>
    public IReadOnlyList<string> SkipReasons
    {
        get { lock (_reasons) return [.. _reasons]; }
    }

    public void AddRow() => Interlocked.Increment(ref _rows);
    public void AddTruncated() => Interlocked.Increment(ref _truncated);
    public void AddDropped() => Interlocked.Increment(ref _dropped);

    public void AddSkipped(DataException reason)
    {
        Interlocked.Increment(ref _skipped);
        lock (_reasons)
            if (_reasons.Count < MaxReasons) _reasons.Add(reason.Message);
    }

    public override string ToString()
    {
        var s = $"rows {RowsRead}, skipped {Skipped}, truncated {Truncated}, dropped {Dropped}";
        var reasons = SkipReasons;
        return reasons.Count == 0 ? s : s + "; first skipped: " + reasons[0];
    }
}
