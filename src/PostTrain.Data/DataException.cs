// The error every bad input in PostTrain.Data raises: it names the file, the row (1-based line for JSONL,
// 0-based row for Parquet) and the column, so a user can open the file and fix the row.
namespace PostTrain.Data;

public sealed class DataException : Exception
{
    public DataException(string file, string? location, string? column, string problem, Exception? inner = null)
        : base(Format(file, location, column, problem), inner)
    {
        File = file;
        Location = location;
        Column = column;
        Problem = problem;
    }

    /// <summary>The file at fault.</summary>
    public string File { get; }

    /// <summary>Where in the file, e.g. "line 12" or "row 5", or null for the whole file.</summary>
    public string? Location { get; }

    /// <summary>The column at fault, or null.</summary>
    public string? Column { get; }

    /// <summary>What is wrong, without the file/row/column prefix.</summary>
    public string Problem { get; }

    /// <summary>A bad value of a row's column.</summary>
    public static DataException ForRow(DataRow row, string? column, string problem) =>
        new(row.File, row.Location, column, problem);

    private static string Format(string file, string? location, string? column, string problem)
    {
        var where = file;
        if (location is not null) where += $", {location}";
        if (column is not null) where += $", column '{column}'";
        return $"{where}: {problem}";
    }
}
