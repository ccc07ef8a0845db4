// Streams a JSONL file one line at a time (a file larger than memory works): each non-blank line must be
// a JSON object and becomes a DataRow numbered by its 1-based line. A malformed line raises a DataException
// naming file and line, or, with skipBadRows, is skipped and counted in DataStats.
using System.Text.Json;

namespace PostTrain.Data.Readers;

public static class JsonlReader
{
    public static IEnumerable<DataRow> Read(string path, bool skipBadRows = false, DataStats? stats = null)
    {
        if (!File.Exists(path)) throw new DataException(path, null, null, "file not found");
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        long lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var row = Parse(path, lineNumber, line, out var error);
            if (row is null)
            {
                if (!skipBadRows) throw error!;
                stats?.AddSkipped(error!);
                continue;
            }
            stats?.AddRow();
            yield return row;
        }
    }

    private static DataRow? Parse(string path, long lineNumber, string line, out DataException? error)
    {
        error = null;
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = new DataException(path, $"line {lineNumber}", null,
                    $"expected a JSON object, got {doc.RootElement.ValueKind}");
                return null;
            }
            var columns = (IReadOnlyDictionary<string, object?>)JsonValues.ToObject(doc.RootElement)!;
            return new DataRow(path, lineNumber, IsLine: true, columns);
        }
        catch (JsonException e)
        {
            error = new DataException(path, $"line {lineNumber}", null, $"malformed JSON: {e.Message}", e);
            return null;
        }
    }
}
