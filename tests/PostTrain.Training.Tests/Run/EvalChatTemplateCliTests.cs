// posttrain eval --chat-template: "label=template" for one model, a bare template for every model; bad values are usage
// errors (exit 2) naming the option or the key, before any model runs.
using System.Text;
using PostTrain.Core.Model;

namespace PostTrain.Training.Tests.Run;

public sealed class EvalChatTemplateCliTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"posttrain-evalcli-{Guid.NewGuid():N}");

    public EvalChatTemplateCliTests()
    {
        Directory.CreateDirectory(_root);
        using var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.InitWeights(0.2, 3);
        PretrainedModel.Save(m, Path.Combine(_root, "base"));
        File.WriteAllText(Path.Combine(_root, "t.jsonl"), "{\"prompt\": \"What is 2 + 3?\", \"answer\": 5}\n");
        File.WriteAllText(Path.Combine(_root, "t.yaml"), "name: t\ndataset: t.jsonl\nchecker: math\n");
    }

    private async Task<(int Code, string Out, string Err)> Eval(params string[] extra)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await PostTrain.Cli.CliApp.RunAsync(["eval", "--model", $"b={Path.Combine(_root, "base")}", "--task", Path.Combine(_root, "t.yaml"),
            "--max-new-tokens", "2", "--device", "cpu", "--output", Path.Combine(_root, $"out-{Guid.NewGuid():N}"), .. extra], o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task A_template_per_label_or_for_every_model()
    {
        int bytes = Encoding.UTF8.GetByteCount("What is 2 + 3?");
        foreach (var (option, tokens) in new[] { ("b=plain", bytes + 1), ("plain", bytes + 1), ("b=deepseek_v3", bytes + 3) })
        {
            var dir = Path.Combine(_root, $"out-{Guid.NewGuid():N}");
            var o = new StringWriter();
            var e = new StringWriter();
            int code = await PostTrain.Cli.CliApp.RunAsync(["eval", "--model", $"b={Path.Combine(_root, "base")}", "--task", Path.Combine(_root, "t.yaml"),
                "--max-new-tokens", "2", "--device", "cpu", "--output", dir, "--chat-template", option], o, e);
            Assert.True(code == 0, e.ToString());
            Assert.Contains($"\"prompt_tokens\":{tokens},", File.ReadAllText(Path.Combine(dir, "samples.jsonl")));
        }
    }

    [Theory]
    [InlineData("b=", "--chat-template b=: no template after '='")]
    [InlineData("x=plain", "chat_templates.x: no model is labelled 'x'")]
    [InlineData("b=nope", "chat_templates.b: 'nope' is not a template")]
    public async Task Bad_values_are_usage_errors(string option, string message)
    {
        var (code, _, err) = await Eval("--chat-template", option);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
    }

    [Fact]
    public async Task Two_templates_for_one_label_are_a_usage_error()
    {
        var (code, _, err) = await Eval("--chat-template", "b=plain", "--chat-template", "b=deepseek_v3");
        Assert.Equal(2, code);
        Assert.Contains("--chat-template: two templates for 'b'", err);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
