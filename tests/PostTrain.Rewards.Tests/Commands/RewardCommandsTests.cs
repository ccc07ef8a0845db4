using System.Text.Json;
using PostTrain.Rewards.Commands;

namespace PostTrain.Rewards.Tests.Commands;

public sealed class RewardCommandsTests
{
    private const string Cases = """
        {"id": "a", "prompt": "2+2?", "completion": "<think>add</think> 4"}

        {"id": "b", "prompt": "2+2?", "completion": "4", "answer": 4}
        {"prompt": "Assistant: <think>\n", "completion": "add\n</think> 4", "tags": ["x", 1]}
        """;

    [Fact]
    public void RunWritesOneResultLinePerCaseAndASummary()
    {
        using var dir = new TempDir();
        var input = dir.Write("cases.jsonl", Cases);
        var output = Path.Combine(dir.Path, "out", "results.jsonl");
        var (stdout, stderr) = (new StringWriter(), new StringWriter());

        var code = RewardCommands.Run("format", input, output, Repo.RewardsDir, stdout, stderr);

        Assert.Equal(0, code);
        Assert.Equal("", stderr.ToString());
        var lines = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([1, 3, 4], lines.Select(l => l.GetProperty("line").GetInt32()));
        Assert.Equal([1.0, 0.0, 1.0], lines.Select(l => l.GetProperty("score").GetDouble()));
        Assert.Equal("a", lines[0].GetProperty("id").GetString());
        Assert.False(lines[2].TryGetProperty("id", out _));
        Assert.Equal("does not start with <think>", lines[1].GetProperty("reason").GetString());
        Assert.All(lines, l => Assert.Equal("ok", l.GetProperty("status").GetString()));
        Assert.All(lines, l => Assert.True(l.GetProperty("ms").GetDouble() >= 0));
        Assert.Contains("\"reason\":\"does not start with <think>\"", File.ReadAllLines(output)[1]); // readable, not \u003C
        var summary = stdout.ToString();
        Assert.Contains("count", summary);
        Assert.Contains("p95 ms", summary);
        Assert.Matches(@"format\s*│\s*3\s*│\s*0\.6667\s*│\s*0\s*│\s*0\s*│\s*0\s*│", summary);
        Assert.Contains($"wrote 3 results to {output}", summary);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!, "*.tmp-*"));
    }

    [Fact]
    public void RunWithoutOutputPrintsLinesAndReportsPluginErrors()
    {
        using var dir = new TempDir();
        var input = dir.Write("cases.jsonl", Cases);
        var plugin = dir.Write("picky.js", "// picky\nfunction reward(s) {\n  if (s.columns.answer === undefined) throw new Error('no answer');\n  return s.columns.answer;\n}");
        var (stdout, stderr) = (new StringWriter(), new StringWriter());

        var code = RewardCommands.Run(plugin, input, null, Repo.RewardsDir, stdout, stderr);

        Assert.Equal(1, code);
        var lines = stdout.ToString().Split('\n').Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["error", "ok", "error"], lines.Select(l => l.GetProperty("status").GetString()));
        Assert.Equal(4.0, lines[1].GetProperty("score").GetDouble());
        Assert.Equal(JsonValueKind.Null, lines[0].GetProperty("score").ValueKind);
        Assert.Equal($"PluginException: {plugin}:3: no answer", lines[0].GetProperty("error").GetString());
        Assert.Matches(@"picky\s*│\s*3\s*│\s*4\s*│\s*0\s*│\s*2\s*│", stdout.ToString());
    }

    [Theory]
    [InlineData("{\"prompt\": \"p\", \"completion\": \"c\"}\n{\"prompt\": \"p\", \"completion\": \"c\"\n", "cases.jsonl:2: invalid JSON")]
    [InlineData("{\"prompt\": \"p\"}\n", "cases.jsonl:1: missing field 'completion'")]
    [InlineData("\n[1, 2]\n", "cases.jsonl:2: expected a JSON object")]
    [InlineData("{\"prompt\": \"p\", \"completion\": 4}\n", "cases.jsonl:1: field 'completion' must be a string")]
    public void BadInputLinesNameFileAndLine(string content, string expected)
    {
        using var dir = new TempDir();
        var input = dir.Write("cases.jsonl", content);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, RewardCommands.Run("format", input, null, Repo.RewardsDir, stdout, stderr));
        Assert.Contains(expected, stderr.ToString());
    }

    [Fact]
    public void UnknownRewardIsAnError()
    {
        using var dir = new TempDir();
        var input = dir.Write("cases.jsonl", Cases);
        var stderr = new StringWriter();
        Assert.Equal(2, RewardCommands.Run("lenght", input, null, Repo.RewardsDir, new StringWriter(), stderr));
        Assert.Contains("did you mean 'length'?", stderr.ToString());
    }

    [Fact]
    public void ListShowsBuiltinsAndPluginsWithDescriptions()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, RewardCommands.List(Repo.RewardsDir, stdout));
        var text = stdout.ToString();
        foreach (var name in new[] { "format", "tag_count", "length", "repetition", "language", "contains", "regex", "r1_format", "boxed_math" })
            Assert.Matches($@"│\s*{name}\s*│", text);
        Assert.Contains("Boxed-answer math reward", text);
    }

    [Fact]
    public void PercentileIsNearestRank()
    {
        var values = Enumerable.Range(1, 20).Select(i => (double)(21 - i)).ToList(); // 20..1, unsorted
        Assert.Equal(10.0, RewardCommands.Percentile(values, 0.50));
        Assert.Equal(19.0, RewardCommands.Percentile(values, 0.95));
        Assert.Equal(7.0, RewardCommands.Percentile([7.0], 0.95));
        Assert.Equal(0.0, RewardCommands.Percentile([], 0.5));
    }
}
