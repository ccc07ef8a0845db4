// The pure-text parts of the sandbox: code extraction from completions, the tests-column format, output comparison.
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

public sealed class SandboxTextTests
{
    [Fact]
    public void ExtractsLastBlockTaggedWithTheLanguage()
    {
        var completion = "First try:\n```js\nfunction solve() { return 1; }\n```\nBetter:\n```javascript\nfunction solve() { return 2; }\n```\n```python\nprint(3)\n```\n";
        Assert.Equal("function solve() { return 2; }", CodeExtractor.Extract(completion, "javascript"));
        Assert.Null(CodeExtractor.Extract(completion, "csharp"));
    }

    [Fact]
    public void ExtractsCSharpAliasesTildeFencesAndUntaggedFallback()
    {
        Assert.Equal("int Solve() => 1;", CodeExtractor.Extract("~~~cs\nint Solve() => 1;\n~~~", "csharp"));
        Assert.Equal("int Solve() => 2;", CodeExtractor.Extract("```C#\nint Solve() => 2;\n```", "c#"));
        Assert.Equal("x", CodeExtractor.Extract("```\nx\n```", "csharp"));
        Assert.Equal("a\n```\nb", CodeExtractor.Extract("````csharp\na\n```\nb\n````", "csharp"));
    }

    [Fact]
    public void IgnoresThinkingAndUnclosedFences()
    {
        var completion = "<think>\n```js\nfunction solve() { return 'draft'; }\n```\n</think>\nAnswer:\n```js\nfunction solve() { return 'final'; }\n```";
        Assert.Equal("function solve() { return 'final'; }", CodeExtractor.Extract(completion, "js"));
        Assert.Null(CodeExtractor.Extract("```js\nfunction solve() {", "js"));
        Assert.Null(CodeExtractor.Extract("no code here", "js"));
        Assert.Throws<ArgumentException>(() => CodeExtractor.Extract("```x\n```", "cobol"));
    }

    [Fact]
    public void ParsesFunctionAndStdioSpecs()
    {
        var f = TestSpec.Parse("""{"language":"javascript","entry":"solve","cases":[{"args":[1,[2]],"expected":{"a":3}}],"scoring":"all","tolerance":0.01}""");
        Assert.Equal("solve", f.Entry);
        Assert.True(f.AllOrNothing);
        Assert.Equal(0.01, f.Tolerance);
        Assert.Equal("[1,[2]]", f.Cases[0].ArgsJson);
        Assert.Equal("""{"a":3}""", f.Cases[0].ExpectedJson);
        var s = TestSpec.Parse("""{"cases":[{"stdin":"1 2\n","stdout":"3\n"},{"stdout":"x"}]}""");
        Assert.False(s.IsFunctionMode);
        Assert.Equal("1 2\n", s.Cases[0].Stdin);
        Assert.Equal("", s.Cases[1].Stdin);
    }

    [Theory]
    [InlineData("""{"entry":"solve","cases":[{"args":[1]}]}""", "cases[0]: 'expected' is missing")]
    [InlineData("""{"entry":"solve","cases":[{"args":1,"expected":1}]}""", "cases[0]: 'args' must be an array")]
    [InlineData("""{"cases":[{"stdin":"1"}]}""", "cases[0]: 'stdout' is missing")]
    [InlineData("""{"cases":[{"args":[],"expected":1}]}""", "cases[0]: 'args' needs an 'entry'")]
    [InlineData("""{"cases":[]}""", "'cases' is empty")]
    [InlineData("""{"entry":"a b","cases":[]}""", "'entry' must be a name")]
    [InlineData("""{"cases":[{"stdout":"1"}],"colour":"red"}""", "unknown key 'colour'")]
    [InlineData("""{"cases":[{"stdout":"1"}],"scoring":"most"}""", "'scoring' must be")]
    [InlineData("[1,2]", "expected a JSON object")]
    [InlineData("{", "not valid JSON")]
    public void RejectsBadSpecsNamingTheKey(string json, string message)
    {
        var e = Assert.Throws<FormatException>(() => TestSpec.Parse(json, "row 7 tests"));
        Assert.StartsWith("row 7 tests", e.Message, StringComparison.Ordinal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("3", "3", true)]
    [InlineData("3.0", "3", true)]
    [InlineData("0.30000000000000004", "0.3", true)]
    [InlineData("0.31", "0.3", false)]
    [InlineData("9007199254740993", "9007199254740992", false)]
    [InlineData("""{"b":[1,2],"a":null}""", """{"a":null,"b":[1,2]}""", true)]
    [InlineData("[1,2]", "[2,1]", false)]
    [InlineData("\"3\"", "3", false)]
    [InlineData("true", "true", true)]
    [InlineData("null", "0", false)]
    [InlineData("not json", "0", false)]
    public void ComparesJsonStructurally(string actual, string expected, bool equal) =>
        Assert.Equal(equal, OutputComparer.JsonEquals(actual, expected, 1e-6));

    [Theory]
    [InlineData("3\n", "3", true)]
    [InlineData("1 2  \r\n3\n\n", "1 2\n3", true)]
    [InlineData("1 2\n3", "1  2\n3", false)]
    [InlineData("", "\n", true)]
    [InlineData("\n3", "3", false)]
    public void ComparesStdoutIgnoringTrailingWhitespace(string actual, string expected, bool equal) =>
        Assert.Equal(equal, OutputComparer.StdoutEquals(actual, expected));
}
