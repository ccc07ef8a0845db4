using PostTrain.Data;
using PostTrain.Eval.Tasks;

namespace PostTrain.Eval.Tests;

public sealed class TaskTests
{
    [Fact]
    public void TaskFileParsesYamlAndJsonAndRejectsUnknownKeys()
    {
        var t = EvalTaskFile.Parse("""
            name: mytask
            dataset: data/x.jsonl
            checker: code
            checker_options: {language: csharp, all_or_nothing: true}
            prompt_template: "Q: {question}"
            stop_strings: ["\n\n"]
            """, "/tmp/tasks/my.yaml");
        Assert.Equal(("mytask", "/tmp/tasks/data/x.jsonl", "code", "code", "Q: {question}"), (t.Name, t.Dataset, t.Checker, t.Answers, t.PromptTemplate));
        Assert.Equal("csharp", t.CheckerOptions["language"]);
        Assert.Equal(true, t.CheckerOptions["all_or_nothing"]);
        Assert.Equal(["\n\n"], t.StopStrings!);

        var j = EvalTaskFile.Parse("""{"dataset": "/d/a.parquet", "checker": "math", "checker_options": {"relative_tolerance": 0.01}}""", "/t/arith.json");
        Assert.Equal(("arith", "/d/a.parquet", "math", "{prompt}"), (j.Name, j.Dataset, j.Answers, j.PromptTemplate));
        Assert.Equal(0.01, j.CheckerOptions["relative_tolerance"]);

        var e = Assert.Throws<EvalConfigException>(() => EvalTaskFile.Parse("dataset: a.jsonl\nchecker: math\nchekcer_options: {}\n", "bad.yaml"));
        Assert.Contains("bad.yaml", e.Message);
        Assert.Contains("chekcer_options", e.Message);
        Assert.Contains("missing required key 'checker'", Assert.Throws<EvalConfigException>(() => EvalTaskFile.Parse("dataset: a.jsonl\n", "x.yaml")).Message);
    }

    [Fact]
    public void Unclosed_list_in_a_task_file_is_a_positioned_yaml_error()
    {
        // YamlDotNet's scanner throws a bare InvalidOperationException here; the error names file:line:col of the '['.
        var e = Assert.Throws<EvalConfigException>(() => EvalTaskFile.Parse("dataset: a.jsonl\nstop_strings: [\"x\", \"y\"\nchecker: math\n", "t.yaml"));
        Assert.StartsWith("t.yaml:2:15: invalid YAML: '[' (a list) opened here is not closed", e.Message);
    }

    [Fact]
    public void PromptTemplateRendersColumnsAndNamesMissingOnes()
    {
        var row = new DataRow("f.jsonl", 3, true, new Dictionary<string, object?> { ["q"] = "2+2?", ["nums"] = new List<object?> { 1L, 2L }, ["x"] = 1.5 });
        Assert.Equal("Q {q}: 2+2? [1, 2] 1.5", PromptTemplate.Render("Q {{q}}: {q} {nums} {x}", row, "t"));
        var e = Assert.Throws<EvalConfigException>(() => PromptTemplate.Render("{missing}", row, "t"));
        Assert.Contains("f.jsonl line 3", e.Message);
        Assert.Contains("'missing'", e.Message);
    }

    [Fact]
    public void BuiltinTasksLoadTheirDatasets()
    {
        var arith = EvalProblem.Load(BuiltinTasks.Resolve("arithmetic"), limit: 8);
        Assert.Equal(8, arith.Count);
        Assert.All(arith, p => Assert.NotNull(p.Category));
        Assert.Equal(Enumerable.Range(0, 8), arith.Select(p => p.Index));
        var countdown = EvalProblem.Load(BuiltinTasks.Resolve("countdown"), limit: 3);
        Assert.Contains("<answer>", countdown[0].Prompt);
        Assert.Null(countdown[0].Category);
        var code = EvalProblem.Load(BuiltinTasks.Resolve("code"));
        Assert.Equal(20, code.Count);
        Assert.Equal(10, code.Count(p => p.Category == "csharp"));
        Assert.Contains("unknown task 'arithmetc'", Assert.Throws<EvalConfigException>(() => BuiltinTasks.Resolve("arithmetc")).Message);
    }

    [Theory]
    [InlineData("math", "so 3 + 4 = 7. The answer is \\boxed{ 7 }.", "7")]
    [InlineData("math", "no number here", null)]
    [InlineData("countdown", "think...\n<answer> (21 - 8) + 5 = 18</answer>", "(21-8)+5")]
    [InlineData("countdown", "first\n 3 * 4 ", "3*4")]
    [InlineData("code", "Here:\n```js\nfunction f(x) {\n  return x;\n}\n```", "function f(x) { return x; }")]
    [InlineData("none", "anything", null)]
    public void AnswerExtraction(string kind, string completion, string? expected) =>
        Assert.Equal(expected, Tasks.AnswerExtraction.Extract(kind, completion));
}
