// Per-model chat templates in an eval (chat_templates / --chat-template): a base model pre-trained on raw text is read
// with the plain template (BOS + prompt), the others with their own (auto = DeepSeek-V3's for these folders).
using System.Text;
using PostTrain.Eval.Runner;
using PostTrain.Eval.Tasks;

namespace PostTrain.Eval.Tests;

public sealed class ChatTemplateEvalTests(EvalFixture fx) : IClassFixture<EvalFixture>
{
    private static EvalSettings Greedy(Dictionary<string, string>? templates) =>
        EvalFixture.Settings with { Samples = 1, MaxNewTokens = 3, ChatTemplates = templates };

    private string NewDir() => Path.Combine(fx.Root, $"templates-{Guid.NewGuid():N}");

    [Fact]
    public void EachModelIsPromptedWithItsOwnTemplate()
    {
        var dir = NewDir();
        var r = new EvalRunner(Greedy(new() { ["a"] = "plain" })).Run(
            [EvalModel.FromDirectory(fx.ModelA, "a"), EvalModel.FromDirectory(fx.ModelB, "b")], [BuiltinTasks.Resolve(fx.TaskFile)], dir);
        Assert.Equal(8, r.Samples.Count);
        foreach (var s in r.Samples)
        {
            int bytes = Encoding.UTF8.GetByteCount(s.Prompt);   // the byte tokenizer: one token per byte
            // plain: BOS + prompt; DeepSeek-V3: BOS + <｜User｜> + prompt + <｜Assistant｜>
            Assert.Equal(s.Model == "a" ? bytes + 1 : bytes + 3, s.PromptTokens);
        }
        Assert.Contains("chat templates: a plain (other models: auto)", File.ReadAllText(Path.Combine(dir, "report.md")));

        // "*" covers every model not named
        var all = new EvalRunner(Greedy(new() { ["*"] = "plain", ["b"] = "deepseek_v3" })).Run(
            [EvalModel.FromDirectory(fx.ModelA, "a"), EvalModel.FromDirectory(fx.ModelB, "b")], [BuiltinTasks.Resolve(fx.TaskFile)], NewDir());
        Assert.All(all.Samples, s => Assert.Equal(Encoding.UTF8.GetByteCount(s.Prompt) + (s.Model == "a" ? 1 : 3), s.PromptTokens));
    }

    [Fact]
    public void TemplatesAreCheckedBeforeAnyModelRunsAndPartOfTheSavedSettings()
    {
        var tasks = new[] { BuiltinTasks.Resolve(fx.TaskFile) };
        var dir = NewDir();
        var unknown = Assert.Throws<EvalConfigException>(() => new EvalRunner(Greedy(new() { ["base"] = "plain" }))
            .Run([EvalModel.FromDirectory(fx.ModelA, "a")], tasks, dir));
        Assert.Contains("chat_templates.base: no model is labelled 'base' (models: a;", unknown.Message);

        var bad = Assert.Throws<EvalConfigException>(() => new EvalRunner(Greedy(new() { ["b"] = "no-such-template" }))
            .Run([EvalModel.FromDirectory(fx.ModelA, "a"), EvalModel.FromDirectory(fx.ModelB, "b")], tasks, dir));
        Assert.StartsWith("chat_templates.b: 'no-such-template' is not a template", bad.Message);
        Assert.False(File.Exists(Path.Combine(dir, SampleLog.FileName)) && File.ReadAllText(Path.Combine(dir, SampleLog.FileName)).Length > 0,
            "model a ran before model b's template was checked");

        // an output folder keeps its templates: resuming with another one (or none) is refused, naming the key
        var kept = NewDir();
        new EvalRunner(Greedy(new() { ["a"] = "plain" })).Run([EvalModel.FromDirectory(fx.ModelA, "a")], tasks, kept);
        var other = Assert.Throws<EvalConfigException>(() => new EvalRunner(Greedy(new() { ["a"] = "deepseek_v3" }))
            .Run([EvalModel.FromDirectory(fx.ModelA, "a")], tasks, kept));
        Assert.Contains("chat_templates", other.Message);
        var none = Assert.Throws<EvalConfigException>(() => new EvalRunner(Greedy(null)).Run([EvalModel.FromDirectory(fx.ModelA, "a")], tasks, kept));
        Assert.Contains("chat_templates", none.Message);
        var same = new EvalRunner(Greedy(new() { ["a"] = "plain" })).Run([EvalModel.FromDirectory(fx.ModelA, "a")], tasks, kept);
        Assert.Equal(4, same.Samples.Count);
    }
}
