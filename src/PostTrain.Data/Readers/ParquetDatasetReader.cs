// Streams a Parquet file one row group at a time (only one row group is in memory), yielding DataRows
// numbered by their 0-based row index across the file. Nested columns come back as plain values: lists as
// List<object?>, structs as Dictionary<string, object?> (e.g. `messages` = list of {role, content}).
// Every top-level column of the schema is present in each row (null where the file stores null).
using System.Collections;
using Parquet;
using Parquet.Serialization;

namespace PostTrain.Data.Readers;

public static class ParquetDatasetReader
{
    public static IEnumerable<DataRow> Read(string path, DataStats? stats = null)
    {
        if (!File.Exists(path)) throw new DataException(path, null, null, "file not found");
        using var stream = File.OpenRead(path);
        var (groups, columns) = ReadLayout(path, stream);

        long rowIndex = 0;
        for (var g = 0; g < groups; g++)
        {
            stream.Position = 0;
            IList<Dictionary<string, object>> data;
            try
            {
                data = ParquetSerializer.DeserializeUntypedAsync(stream, null, g).GetAwaiter().GetResult().Data;
            }
            catch (Exception e)
            {
                throw new DataException(path, $"row group {g}", null, $"cannot read row group: {e.Message}", e);
            }
            foreach (var raw in data)
            {
                var row = new Dictionary<string, object?>(columns.Length, StringComparer.Ordinal);
                foreach (var c in columns) row[c] = raw.TryGetValue(c, out var v) ? Normalize(v) : null;
                stats?.AddRow();
                yield return new DataRow(path, rowIndex++, IsLine: false, row);
            }
        }
    }

    private static (int Groups, string[] Columns) ReadLayout(string path, Stream stream)
    {
        try
        {
            var reader = ParquetReader.CreateAsync(stream, null, leaveStreamOpen: true).GetAwaiter().GetResult();
            try
            {
                return (reader.RowGroupCount, [.. reader.Schema.Fields.Select(f => f.Name)]);
            }
            finally
            {
                reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
        catch (Exception e)
        {
            throw new DataException(path, null, null, $"not a readable Parquet file: {e.Message}", e);
        }
    }

    private static object? Normalize(object? value) => value switch
    {
        null => null,
        string s => s,
        ReadOnlyMemory<char> m => m.ToString(),
        byte[] b => b,
        IDictionary d => NormalizeDictionary(d),
        IEnumerable e => e.Cast<object?>().Select(Normalize).ToList(),
        _ => value,
    };

    private static Dictionary<string, object?> NormalizeDictionary(IDictionary d)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in d) result[(string)entry.Key] = Normalize(entry.Value);
        return result;
    }
}
