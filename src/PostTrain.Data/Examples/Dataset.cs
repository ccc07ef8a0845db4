// Streams typed examples from a dataset file: read rows (JSONL or Parquet), parse each with ExampleParser.
// A bad row throws its DataException, or with skipBadRows is skipped and counted in DataStats.
using PostTrain.Data.Readers;

namespace PostTrain.Data.Examples;

public static class Dataset
{
    public static IEnumerable<TextExample> Text(string path, ColumnMap? columns = null, bool skipBadRows = false, DataStats? stats = null) =>
        Parse(path, new ExampleParser(columns).Text, skipBadRows, stats);

    public static IEnumerable<PromptCompletionExample> PromptCompletion(string path, ColumnMap? columns = null, bool skipBadRows = false, DataStats? stats = null) =>
        Parse(path, new ExampleParser(columns).PromptCompletion, skipBadRows, stats);

    public static IEnumerable<ChatExample> Chat(string path, ColumnMap? columns = null, bool skipBadRows = false, DataStats? stats = null) =>
        Parse(path, new ExampleParser(columns).Chat, skipBadRows, stats);

    public static IEnumerable<PreferenceExample> Preference(string path, ColumnMap? columns = null, bool skipBadRows = false, DataStats? stats = null) =>
        Parse(path, new ExampleParser(columns).Preference, skipBadRows, stats);

    /// <summary>Parses rows lazily with <paramref name="parse"/>; see the class comment for bad rows.</summary>
    public static IEnumerable<T> Parse<T>(IEnumerable<DataRow> rows, Func<DataRow, T> parse, bool skipBadRows = false, DataStats? stats = null)
    {
        foreach (var row in rows)
        {
            T example;
            try
            {
                example = parse(row);
            }
            catch (DataException e) when (skipBadRows)
            {
                stats?.AddSkipped(e);
                continue;
            }
            yield return example;
        }
    }

    private static IEnumerable<T> Parse<T>(string path, Func<DataRow, T> parse, bool skipBadRows, DataStats? stats) =>
        Parse(DatasetReader.Read(path, skipBadRows, stats), parse, skipBadRows, stats);
}
