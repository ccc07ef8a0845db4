// posttrain chat-template (--model <dir> | --tokenizer-config <tokenizer_config.json> | --template <file.jinja>)
//   --messages <file.json> [--tools <file.json>] [--documents <file.json>] [--add-generation-prompt]
//   [--set key=json-value ...] [--now <ISO-8601 time>]
// Prints exactly what transformers' apply_chat_template(messages, tools=..., documents=..., add_generation_prompt=...,
// tokenize=False, **set) renders, with nothing added. Special tokens come from the tokenizer config (--model,
// --tokenizer-config) and --set overrides them; a --set value is JSON when it parses as JSON, else the text.
// --now pins the clock strftime_now sees. A template that raises, or malformed input, exits 2 naming the file.
using System.CommandLine;
using System.Globalization;
using PostTrain.Data.Templates;
using PostTrain.Data.Templates.Jinja;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Cli;

public sealed class ChatTemplateVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var model = new Option<string?>("--model") { Description = "a model directory (or hub id org/name[@revision]) with a chat template" };
        var config = new Option<string?>("--tokenizer-config") { Description = "a tokenizer_config.json with a chat_template" };
        var template = new Option<string?>("--template") { Description = "a .jinja template file" };
        var messages = new Option<string>("--messages") { Description = "JSON file: the list of messages", Required = true };
        var tools = new Option<string?>("--tools") { Description = "JSON file: the list of tools" };
        var documents = new Option<string?>("--documents") { Description = "JSON file: the list of documents" };
        var agp = new Option<bool>("--add-generation-prompt") { Description = "end with the assistant's generation prompt" };
        var set = new Option<string[]>("--set") { Description = "a template variable as key=json-value (repeatable; overrides special tokens)" };
        var now = new Option<string?>("--now") { Description = "the time strftime_now sees (ISO-8601), for reproducible renders" };
        var command = new Command("chat-template", "Render messages with a model's chat template exactly as transformers does")
            { model, config, template, messages, tools, documents, agp, set, now };
        command.SetAction(parse =>
        {
            var sources = new (string Name, string? Value)[] { ("--model", parse.GetValue(model)), ("--tokenizer-config", parse.GetValue(config)), ("--template", parse.GetValue(template)) }
                .Where(s => s.Value is not null).ToList();
            if (sources.Count != 1) throw new UsageException("give exactly one of --model, --tokenizer-config, --template");
            var (kind, value) = sources[0];
            var (source, special) = Load(kind, value!);
            var kwargs = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var pair in parse.GetValue(set) ?? [])
            {
                int eq = pair.IndexOf('=');
                if (eq <= 0) throw new UsageException($"--set '{pair}': expected key=json-value");
                kwargs[pair[..eq]] = ChatTemplates.ParseKwargs(new Dictionary<string, string> { ["v"] = pair[(eq + 1)..] })["v"];
            }
            Func<DateTime>? clock = null;
            if (parse.GetValue(now) is { } iso)
            {
                if (!DateTime.TryParse(iso, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var t))
                    throw new UsageException($"--now '{iso}': not an ISO-8601 time (e.g. 2024-07-26T00:00:00)");
                clock = () => t;
            }
            var jinja = new JinjaChatTemplate(ByteTokenizer.Instance, source.Source, source.Origin, special, kwargs, clock);
            var msgs = ReadJson(parse.GetValue(messages)!, "--messages");
            if (msgs is not List<object?>) throw new UsageException($"--messages {parse.GetValue(messages)}: expected a JSON list of messages");
            var text = jinja.RenderText(msgs, parse.GetValue(agp), Optional(parse.GetValue(tools), "--tools"), Optional(parse.GetValue(documents), "--documents")).Text;
            io.Out.Write(text);
            io.Out.Flush();
            return CliApp.Ok;
        });
        return command;
    }

    private static (ModelTemplate Template, Dictionary<string, object?> Special) Load(string kind, string value)
    {
        switch (kind)
        {
            case "--model":
                {
                    var dir = PostTrain.Data.Hub.HfHubCache.ResolvePath(value);
                    if (!Directory.Exists(dir)) throw new UsageException($"--model: '{value}' is not a directory");
                    var t = ModelTemplateFiles.Find(dir) ?? throw new UsageException($"--model: '{dir}' has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json)");
                    return (t, Map(ModelTemplateFiles.SpecialTokens(dir)));
                }
            case "--tokenizer-config":
                {
                    if (!File.Exists(value)) throw new UsageException($"--tokenizer-config: '{value}' not found");
                    var t = ModelTemplateFiles.FindInConfig(value) ?? throw new UsageException($"--tokenizer-config: '{value}' has no chat_template");
                    return (t, Map(ModelTemplateFiles.SpecialTokensFromConfig(value)));
                }
            default:
                if (!File.Exists(value)) throw new UsageException($"--template: '{value}' not found");
                return (new ModelTemplate(File.ReadAllText(value), value), []);
        }
    }

    private static Dictionary<string, object?> Map(PyDict d) => d.ToDictionary(kv => (string)kv.Key, kv => kv.Value);

    private static object? Optional(string? path, string option) => path is null ? null : ReadJson(path, option);

    private static object? ReadJson(string path, string option)
    {
        if (!File.Exists(path)) throw new UsageException($"{option}: '{path}' not found");
        try { return PyJsonReader.Parse(File.ReadAllText(path)); }
        catch (System.Text.Json.JsonException e) { throw new UsageException($"{option} {path}: malformed JSON ({e.Message})"); }
    }
}
