// Typed examples from rows: column mapping, the four formats, and bad rows named by file, row and column.
using PostTrain.Data.Examples;

namespace PostTrain.Data.Tests;

public sealed class ExampleParserTests
{
    [Fact]
    public void Prompt_completion_with_mapped_column_names()
    {
        using var dir = new TempDir();
        var path = dir.File("m.jsonl", """{"question": "1+1?", "solution": "2", "answer": 2}""" + "\n");
        var map = new ColumnMap { Prompt = "question", Completion = "solution" };

        var ex = Assert.Single(Dataset.PromptCompletion(path, map));

        Assert.Equal("1+1?", ex.Prompt);
        Assert.Equal("2", ex.Completion);
        Assert.Equal(2L, ex.Source!["answer"]);
    }

    [Fact]
    public void Chat_messages_parse_roles_in_order()
    {
        using var dir = new TempDir();
        var path = dir.File("c.jsonl", """{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]}""" + "\n");

        var ex = Assert.Single(Dataset.Chat(path));

        Assert.Equal([ChatMessage.System("S"), ChatMessage.User("U"), ChatMessage.Assistant("A")], ex.Messages);
    }

    [Theory]
    [InlineData("""{"prompt": "p"}""", "completion", "missing column")]
    [InlineData("""{"prompt": "p", "completion": 7}""", "completion", "expected a string, got Int64 7")]
    [InlineData("""{"prompt": null, "completion": "c"}""", "prompt", "value is null")]
    public void Bad_prompt_completion_rows_name_file_line_and_column(string line, string column, string problem)
    {
        using var dir = new TempDir();
        var path = dir.File("pc.jsonl", """{"prompt": "ok", "completion": "ok"}""" + "\n" + line + "\n");

        var e = Assert.Throws<DataException>(() => Dataset.PromptCompletion(path).ToList());

        Assert.Equal(path, e.File);
        Assert.Equal("line 2", e.Location);
        Assert.Equal(column, e.Column);
        Assert.Contains(problem, e.Message);
        Assert.StartsWith($"{path}, line 2, column '{column}': ", e.Message);
    }

    [Theory]
    [InlineData("""{"messages": []}""", "empty messages list")]
    [InlineData("""{"messages": "hi"}""", "expected a list of {role, content} messages, got a string")]
    [InlineData("""{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}""", "message 2: unknown role 'bot'")]
    [InlineData("""{"messages": [{"role": "user"}]}""", "message 1: missing or non-string 'content'")]
    [InlineData("""{"messages": [3]}""", "message 1: expected an object")]
    [InlineData("""{"text": "no messages"}""", "missing column")]
    public void Bad_chat_rows_name_the_problem(string line, string problem)
    {
        using var dir = new TempDir();
        var path = dir.File("chat.jsonl", line + "\n");

        var e = Assert.Throws<DataException>(() => Dataset.Chat(path).ToList());

        Assert.Contains(problem, e.Message);
        Assert.Contains("chat.jsonl, line 1, column 'messages'", e.Message);
    }

    [Fact]
    public void Bad_rows_are_skipped_and_counted_when_asked()
    {
        using var dir = new TempDir();
        var path = dir.File("chat.jsonl", string.Join("\n",
            """{"messages": [{"role": "user", "content": "a"}]}""",
            """{"messages": []}""",
            """not json""",
            """{"messages": [{"role": "robot", "content": "a"}]}""",
            """{"messages": [{"role": "assistant", "content": "b"}]}"""));
        var stats = new DataStats();

        var examples = Dataset.Chat(path, skipBadRows: true, stats: stats).ToList();

        Assert.Equal(["a", "b"], examples.Select(e => e.Messages[0].Content));
        Assert.Equal(3, stats.Skipped);
        Assert.Equal(["line 2", "line 3", "line 4"], stats.SkipReasons.Select(r => r.Split(", ")[1].Split(":")[0]));
    }

    [Fact]
    public void Parquet_rows_report_their_0_based_row()
    {
        using var dir = new TempDir();
        var path = dir.File("p.parquet");
        ReaderTests.WriteParquet(path, new[]
        {
            new ReaderTests.ChatRow { Messages = [new() { Role = "user", Content = "x" }] },
            new ReaderTests.ChatRow { Messages = [new() { Role = "tool", Content = "x" }] },
        }, rowGroupSize: 1);

        var e = Assert.Throws<DataException>(() => Dataset.Chat(path).ToList());

        Assert.Equal("row 1", e.Location);
        Assert.Contains("unknown role 'tool'", e.Message);
    }

    [Fact]
    public void Preference_pairs_from_strings_messages_and_implicit_prompt()
    {
        using var dir = new TempDir();
        var path = dir.File("pref.jsonl", string.Join("\n",
            """{"prompt": "2+2?", "chosen": "4", "rejected": "5"}""",
            """{"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "hello"}], "rejected": [{"role": "assistant", "content": "go away"}]}""",
            """{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}]}""",
            """{"prompt": "p", "chosen": "x", "rejected": [{"role": "assistant", "content": "y"}]}"""));

        var parser = new ExampleParser();
        var rows = Readers.DatasetReader.Read(path).ToList();
        var plain = parser.Preference(rows[0]);
        var chat = parser.Preference(rows[1]);
        var implicitPrompt = parser.Preference(rows[2]);

        Assert.False(plain.IsConversational);
        Assert.Equal([ChatMessage.User("2+2?")], plain.Prompt);
        Assert.Equal([ChatMessage.Assistant("4")], plain.Chosen);
        Assert.Equal([ChatMessage.Assistant("5")], plain.Rejected);
        Assert.True(chat.IsConversational);
        Assert.Equal([ChatMessage.User("hi"), ChatMessage.Assistant("hello")], chat.ChosenChat.Messages);
        Assert.Equal([ChatMessage.User("q")], implicitPrompt.Prompt);
        Assert.Equal([ChatMessage.Assistant("good")], implicitPrompt.Chosen);
        Assert.Equal([ChatMessage.Assistant("bad")], implicitPrompt.Rejected);
        var e = Assert.Throws<DataException>(() => parser.Preference(rows[3]));
        Assert.Contains("must both be strings or both be message lists", e.Message);
        Assert.Equal("rejected", e.Column);
    }
}
