// Opens a dataset file by its extension: .jsonl / .ndjson (JSON lines) or .parquet. Streaming in both cases.
namespace PostTrain.Data.Readers;

public static class DatasetReader
{
    /// <summary>Streams the rows of a .jsonl/.ndjson or .parquet file. Malformed JSONL lines throw a
    /// <see cref="DataException"/> unless <paramref name="skipBadRows"/>, then they are counted in
    /// <paramref name="stats"/>.</summary>
    public static IEnumerable<DataRow> Read(string path, bool skipBadRows = false, DataStats? stats = null)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return ext switch
        {
            ".jsonl" or ".ndjson" => JsonlReader.Read(path, skipBadRows, stats),
            ".parquet" => ParquetDatasetReader.Read(path, stats),
            _ => throw new DataException(path, null, null,
                $"unknown dataset format '{ext}' (expected .jsonl, .ndjson or .parquet)"),
        };
    }
}
