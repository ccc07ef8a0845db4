// JSONL and Parquet readers: row numbering, nested values, streaming, malformed lines.
using System.Text.Json.Serialization;
using Parquet;
using Parquet.Serialization;
using PostTrain.Data.Readers;

namespace PostTrain.Data.Tests;

public sealed class ReaderTests
{
    [Fact]
    public void Jsonl_rows_carry_their_1_based_line_and_nested_values()
    {
        using var dir = new TempDir();
        var path = dir.File("d.jsonl", """
            {"text": "a", "n": 3, "x": 1.5, "ok": true, "none": null}

            {"messages": [{"role": "user", "content": "hi"}], "tags": ["p", 2]}
            """);

        var rows = DatasetReader.Read(path).ToList();

        Assert.Equal(2, rows.Count);
        Assert.Equal(1, rows[0].Row);
        Assert.Equal("line 1", rows[0].Location);
        Assert.Equal("a", rows[0]["text"]);
        Assert.Equal(3L, rows[0]["n"]);
        Assert.Equal(1.5, rows[0]["x"]);
        Assert.Equal(true, rows[0]["ok"]);
        Assert.True(rows[0].Columns.ContainsKey("none"));
        Assert.Null(rows[0]["none"]);
        Assert.Equal(3, rows[1].Row); // the blank line 2 is skipped but counted
        var messages = Assert.IsAssignableFrom<IReadOnlyList<object?>>(rows[1]["messages"]);
        var first = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(messages[0]);
        Assert.Equal("user", first["role"]);
        Assert.Equal(new object?[] { "p", 2L }, Assert.IsAssignableFrom<IReadOnlyList<object?>>(rows[1]["tags"]));
    }

    [Fact]
    public void Malformed_jsonl_line_names_file_and_line()
    {
        using var dir = new TempDir();
        var path = dir.File("bad.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": oops}\n[1, 2]\n{\"text\": \"e\"}\n");

        var e = Assert.Throws<DataException>(() => DatasetReader.Read(path).ToList());
        Assert.Contains("bad.jsonl", e.Message);
        Assert.Contains("line 3", e.Message);
        Assert.Contains("malformed JSON", e.Message);
        Assert.Equal("line 3", e.Location);
    }

    [Fact]
    public void Jsonl_reading_is_lazy_and_skips_bad_lines_when_asked()
    {
        using var dir = new TempDir();
        var path = dir.File("bad.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": oops}\n[1, 2]\n{\"text\": \"e\"}\n");

        // Streaming: the bad line 3 is never parsed when only two rows are taken.
        Assert.Equal(2, DatasetReader.Read(path).Take(2).Count());

        var stats = new DataStats();
        var rows = DatasetReader.Read(path, skipBadRows: true, stats).ToList();
        Assert.Equal(new long[] { 1, 2, 5 }, rows.Select(r => r.Row));
        Assert.Equal(2, stats.Skipped);
        Assert.Equal(3, stats.RowsRead);
        Assert.Contains("line 3", stats.SkipReasons[0]);
        Assert.Contains("line 4", stats.SkipReasons[1]);
        Assert.Contains("expected a JSON object", stats.SkipReasons[1]);
    }

    [Fact]
    public void Parquet_reads_every_row_group_with_continuous_row_numbers_and_nested_messages()
    {
        using var dir = new TempDir();
        var path = dir.File("d.parquet");
        var source = Enumerable.Range(0, 7).Select(i => new ChatRow
        {
            Id = i,
            Prompt = i == 3 ? null : $"p{i}",
            Numbers = [i, i + 1],
            Messages = [new() { Role = "user", Content = $"q{i}" }, new() { Role = "assistant", Content = $"a{i}" }],
        }).ToList();
        WriteParquet(path, source, rowGroupSize: 3);
        Assert.Equal(3, RowGroupCount(path));

        var rows = DatasetReader.Read(path).ToList();

        Assert.Equal(Enumerable.Range(0, 7).Select(i => (long)i), rows.Select(r => r.Row));
        Assert.Equal("row 4", rows[4].Location);
        for (var i = 0; i < 7; i++)
        {
            Assert.Equal(i, rows[i]["id"]);
            Assert.Equal(i == 3 ? null : $"p{i}", rows[i]["prompt"]);
            Assert.True(rows[i].Columns.ContainsKey("prompt"));
            Assert.Equal(new object?[] { i, i + 1 }, Assert.IsAssignableFrom<IReadOnlyList<object?>>(rows[i]["numbers"]));
            var messages = Assert.IsAssignableFrom<IReadOnlyList<object?>>(rows[i]["messages"]);
            var answer = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(messages[1]);
            Assert.Equal("assistant", answer["role"]);
            Assert.Equal($"a{i}", answer["content"]);
        }
    }

    [Fact]
    public void Unknown_extension_and_missing_file_are_data_errors()
    {
        using var dir = new TempDir();
        Assert.Contains("unknown dataset format", Assert.Throws<DataException>(() => DatasetReader.Read(dir.File("x.csv", "a")).ToList()).Message);
        Assert.Contains("file not found", Assert.Throws<DataException>(() => DatasetReader.Read(dir.File("nope.jsonl")).ToList()).Message);
        Assert.Contains("not a readable Parquet file", Assert.Throws<DataException>(() => DatasetReader.Read(dir.File("x.parquet", "not parquet")).ToList()).Message);
    }

    [Fact]
    public void A_directory_or_file_name_pattern_reads_its_dataset_files_in_name_order()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data"));
        WriteParquet(dir.File("data/shard-00001.parquet"), [new ChatRow { Id = 10, Prompt = "c" }], rowGroupSize: 10);
        WriteParquet(dir.File("data/shard-00000.parquet"), [new ChatRow { Id = 0, Prompt = "a" }, new ChatRow { Id = 1, Prompt = "b" }], rowGroupSize: 10);
        dir.File("data/extra.jsonl", "{\"prompt\": \"d\"}\n");
        dir.File("data/README.md", "not data");                            // no dataset extension: ignored
        dir.File("data/shard-00002.parquet.tmp-123", "a torn temp file");    // an unfinished atomic write: ignored

        var all = DatasetReader.Read(dir.File("data")).ToList();
        Assert.Equal(["d", "a", "b", "c"], all.Select(r => (string?)r["prompt"]));   // extra.jsonl < shard-00000 < shard-00001
        Assert.Equal(["line 1", "row 0", "row 1", "row 0"], all.Select(r => r.Location));
        Assert.EndsWith("shard-00001.parquet", all[3].File);

        var shards = DatasetReader.Read(dir.File("data/shard-*.parquet")).ToList();
        Assert.Equal(["a", "b", "c"], shards.Select(r => (string?)r["prompt"]));
        Assert.Equal(["a", "b"], DatasetReader.Read(dir.File("data/shard-????0.parquet")).Select(r => (string?)r["prompt"]));

        Directory.CreateDirectory(dir.File("empty"));
        Assert.Contains("no dataset files", Assert.Throws<DataException>(() => DatasetReader.Read(dir.File("empty"))).Message);
        var none = Assert.Throws<DataException>(() => DatasetReader.Read(dir.File("data/train-*.parquet")));
        Assert.Contains("match 'train-*.parquet'", none.Message);
        Assert.Contains("not found", Assert.Throws<DataException>(() => DatasetReader.Read(dir.File("nowhere/*.parquet"))).Message);
    }

    internal static void WriteParquet<T>(string path, IEnumerable<T> rows, int rowGroupSize)
    {
        using var fs = File.Create(path);
        ParquetSerializer.SerializeAsync(rows, fs, new ParquetOptions { RowGroupSize = rowGroupSize }).GetAwaiter().GetResult();
    }

    private static int RowGroupCount(string path)
    {
        using var fs = File.OpenRead(path);
        var reader = ParquetReader.CreateAsync(fs).GetAwaiter().GetResult();
        var count = reader.RowGroupCount;
        reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return count;
    }

    internal sealed class Message
    {
        [JsonPropertyName("role")] public string? Role { get; set; }
        [JsonPropertyName("content")] public string? Content { get; set; }
    }

    internal sealed class ChatRow
    {
        [JsonPropertyName("id")] public int Id { get; set; }
        [JsonPropertyName("prompt")] public string? Prompt { get; set; }
        [JsonPropertyName("numbers")] public List<int> Numbers { get; set; } = [];
        [JsonPropertyName("messages")] public List<Message> Messages { get; set; } = [];
    }
}
