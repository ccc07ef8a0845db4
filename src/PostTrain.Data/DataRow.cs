// One row of a dataset as read from disk, before it becomes a typed example. Column values are plain
// .NET values: string, long/int/double/bool (as stored), null, IReadOnlyList<object?> for lists and
// IReadOnlyDictionary<string, object?> for structs/objects (e.g. a `messages` list of {role, content}).
namespace PostTrain.Data;

/// <summary>A dataset row. <paramref name="Row"/> is the 1-based line number for JSONL and the 0-based row
/// index (across row groups) for Parquet; <see cref="Location"/> says which.</summary>
public sealed record DataRow(string File, long Row, bool IsLine, IReadOnlyDictionary<string, object?> Columns)
{
    /// <summary>"line 12" (JSONL, 1-based) or "row 5" (Parquet, 0-based).</summary>
    public string Location => IsLine ? $"line {Row}" : $"row {Row}";

    /// <summary>The column's value, or null when the column is absent or null.</summary>
    public object? this[string column] => Columns.TryGetValue(column, out var v) ? v : null;

    public bool Has(string column) => Columns.TryGetValue(column, out var v) && v is not null;
}
