// `posttrain chat-template` on the 205 cases of ../shared/chat-templates: each case's template and special tokens
// written as a model directory's tokenizer_config.json, its messages/tools as JSON files, its extra kwargs as
// --set and its clock as --now; stdout must be transformers' text exactly, and the 8 raising cases exit 2.
using System.Text.Json;
using System.Text.Json.Nodes;
using PostTrain.Cli;

namespace PostTrain.Training.Tests.Recipes;

public sealed class ChatTemplateVerbTests : IDisposable
{
    private readonly string _tmp = Path.Combine(Path.GetTempPath(), "posttrain-cliverb-" + Guid.NewGuid().ToString("N"));

    public ChatTemplateVerbTests() => Directory.CreateDirectory(_tmp);
    public void Dispose() { try { Directory.Delete(_tmp, true); } catch (IOException) { } }

    private static async Task<(int Code, string Out, string Err)> Cli(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string SharedCases()
    {
        var path = Path.GetFullPath(RepoPaths.Of("../shared/chat-templates/cases.jsonl"));
        if (!File.Exists(path)) throw new InvalidOperationException($"chat-template test data missing: {path} (../shared beside the checkout)");
        return path;
    }

    private string Write(string name, string text)
    {
        var p = Path.Combine(_tmp, name);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllText(p, text);
        return p;
    }

    [Fact]
    public async Task Renders_every_shared_case_exactly_and_exits_2_on_the_raising_ones()
    {
        var failures = new List<string>();
        int n = 0;
        foreach (var line in File.ReadLines(SharedCases()))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            var c = JsonNode.Parse(line)!.AsObject();
            string id = (string)c["id"]!;
            var config = new JsonObject { ["chat_template"] = (string)c["template"]! };
            foreach (var (k, v) in c["special_tokens"]!.AsObject()) config[k] = v?.DeepClone();
            var dir = Path.Combine(_tmp, id);
            Write(Path.Combine(id, "tokenizer_config.json"), config.ToJsonString());
            var args = new List<string> { "chat-template", "--model", dir, "--messages", Write(Path.Combine(id, "m.json"), c["messages"]!.ToJsonString()),
                "--now", (string)c["now"]! };
            if (c["tools"] is JsonNode tools) args.AddRange(["--tools", Write(Path.Combine(id, "t.json"), tools.ToJsonString())]);
            if ((bool)c["add_generation_prompt"]!) args.Add("--add-generation-prompt");
            foreach (var (k, v) in c["extra"]!.AsObject()) args.AddRange(["--set", $"{k}={v!.ToJsonString()}"]);
            var (code, stdout, err) = await Cli([.. args]);
            n++;
            if ((bool)c["expect_error"]!)
            {
                if (code != 2 || !err.StartsWith("error: ", StringComparison.Ordinal)) failures.Add($"{id}: expected exit 2, got {code} {err}");
            }
            else if (code != 0) failures.Add($"{id}: exit {code}: {err}");
            else if (stdout != (string)c["expected"]!) failures.Add($"{id}: output differs");
        }
        Assert.Equal(205, n);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task Template_file_and_tokenizer_config_sources_and_set_overrides()
    {
        var messages = Write("m.json", """[{"role": "user", "content": "hi"}]""");
        var template = Write("t.jinja", "{{ bos_token }}{{ messages[0]['content'] }}{% if add_generation_prompt %}|{{ flag }}|{{ strftime_now('%d %b %Y') }}{% endif %}\n");
        var (code, stdout, err) = await Cli("chat-template", "--template", template, "--messages", messages, "--set", "bos_token=<s>",
            "--set", "flag=[1, \"x\"]", "--add-generation-prompt", "--now", "2024-07-26T00:00:00");
        Assert.True(code == 0, err);
        Assert.Equal("<s>hi|[1, 'x']|26 Jul 2024", stdout);   // one trailing newline of the template is dropped, as jinja2 does

        var config = Write("tc.json", JsonSerializer.Serialize(new { bos_token = "<B>", chat_template = "{{ bos_token }}{{ messages|length }}" }));
        (code, stdout, err) = await Cli("chat-template", "--tokenizer-config", config, "--messages", messages);
        Assert.True(code == 0, err);
        Assert.Equal("<B>1", stdout);
    }

    [Fact]
    public async Task Bad_input_exits_2_naming_what_is_wrong()
    {
        var messages = Write("m.json", """[{"role": "user", "content": "hi"}]""");
        var template = Write("t.jinja", "{{ messages[0].content }}");
        var (code, _, err) = await Cli("chat-template", "--template", template, "--messages", Write("bad.json", "[{\"role\": "));
        Assert.Equal(2, code);
        Assert.Contains("bad.json: malformed JSON", err);
        (code, _, err) = await Cli("chat-template", "--template", template, "--model", _tmp, "--messages", messages);
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --model, --tokenizer-config, --template", err);
        (code, _, err) = await Cli("chat-template", "--template", Write("r.jinja", "{{ raise_exception('no system') }}"), "--messages", messages);
        Assert.Equal(2, code);
        Assert.Contains("r.jinja: the template raised: line 1: no system", err);
        (code, _, err) = await Cli("chat-template", "--template", Write("s.jinja", "{% if %}"), "--messages", messages);
        Assert.Equal(2, code);
        Assert.Contains("s.jinja: line 1:", err);
        (code, _, err) = await Cli("chat-template", "--model", _tmp, "--messages", messages);
        Assert.Equal(2, code);
        Assert.Contains("has no chat template", err);
    }

    [Fact]
    public async Task Model_may_be_a_hub_id_in_the_local_cache()
    {
        // HF_HUB_CACHE is process-wide; only hub ids read it, and no other test of this assembly uses one
        var cache = Path.Combine(_tmp, "hub");
        const string commit = "0123456789abcdef0123456789abcdef01234567";
        Write(Path.Combine("hub", "models--acme--chat", "refs", "main"), commit);
        Write(Path.Combine("hub", "models--acme--chat", "snapshots", commit, "tokenizer_config.json"),
            JsonSerializer.Serialize(new { eos_token = "</s>", chat_template = "{{ messages[0].content }}{{ eos_token }}" }));
        var messages = Write("m.json", """[{"role": "user", "content": "hi"}]""");
        var old = Environment.GetEnvironmentVariable("HF_HUB_CACHE");
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", cache);
        try
        {
            var (code, stdout, err) = await Cli("chat-template", "--model", "acme/chat", "--messages", messages);
            Assert.True(code == 0, err);
            Assert.Equal("hi</s>", stdout);
            (code, _, err) = await Cli("chat-template", "--model", "acme/absent@v2", "--messages", messages);
            Assert.Equal(2, code);
            Assert.Contains(Path.Combine(cache, "models--acme--absent", "refs", "v2"), err);
        }
        finally { Environment.SetEnvironmentVariable("HF_HUB_CACHE", old); }
    }
}
