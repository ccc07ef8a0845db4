// A model's own Jinja chat template as an IChatTemplate. The text is exactly what transformers'
// apply_chat_template renders (Jinja/), encoded with the model's tokenizer. Train masks:
//  - the template has {% generation %} blocks: the characters they produce are trained (transformers'
//    return_assistant_tokens_mask);
//  - otherwise, by rendering prefixes: for each assistant turn i, the text between the render of messages[..i]
//    with the generation prompt and the render of messages[..i+1] without it (the turn's content and its end
//    marker) is trained; both renders must be prefixes of the whole conversation, else the template cannot
//    yield masks this way (e.g. it rewrites earlier turns) and Render throws a ChatTemplateException saying so.
// Trained and untrained pieces are encoded separately and concatenated, so the mask is exact at boundaries
// (like ChatTemplate); special tokens encode to their ids either way.
using PostTrain.Data.Examples;
using PostTrain.Data.Templates.Jinja;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Templates;

public sealed class JinjaChatTemplate : IChatTemplate
{
    private readonly JinjaTemplate _template;
    private readonly Dictionary<string, object?> _variables;
    private readonly Func<DateTime> _now;

    /// <param name="origin">Where the template came from (a file, or tokenizer_config.json), for error messages.</param>
    /// <param name="specialTokens">bos_token, eos_token, ... as transformers passes them.</param>
    /// <param name="kwargs">Extra template variables (enable_thinking, ...); they override special tokens.</param>
    public JinjaChatTemplate(ITokenizer tokenizer, string source, string origin, IReadOnlyDictionary<string, object?>? specialTokens = null,
        IReadOnlyDictionary<string, object?>? kwargs = null, Func<DateTime>? now = null)
    {
        Tokenizer = tokenizer;
        Origin = origin;
        try { _template = JinjaTemplate.Parse(source); }
        catch (JinjaException e) { throw new ChatTemplateException($"{origin}: {e.Message}", e); }
        _variables = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in specialTokens ?? new Dictionary<string, object?>()) _variables[k] = v;
        foreach (var (k, v) in kwargs ?? new Dictionary<string, object?>()) _variables[k] = v;
        _now = now ?? (() => DateTime.Now);
    }

    public ITokenizer Tokenizer { get; }
    public string Origin { get; }
    public bool HasGenerationBlocks => _template.HasGenerationBlocks;

    /// <summary>The rendered text, exactly as apply_chat_template(messages, tokenize=False, ...) gives it.</summary>
    public JinjaRender RenderText(object? messages, bool addGenerationPrompt, object? tools = null, object? documents = null)
    {
        var vars = new Dictionary<string, object?>(_variables)
        {
            ["messages"] = messages, ["tools"] = tools, ["documents"] = documents, ["add_generation_prompt"] = addGenerationPrompt,
        };
        try { return _template.Render(vars, _now); }
        catch (JinjaException e) { throw new ChatTemplateException($"{Origin}: {(e.Kind == "raise_exception" ? "the template raised: " : "")}{e.Message}", e); }
    }

    public static List<object?> ToValues(IEnumerable<ChatMessage> messages) =>
        messages.Select(m => (object?)new PyDict { ["role"] = m.RoleName, ["content"] = m.Content }).ToList();

    public TokenizedExample Render(ChatExample example) => Encode(example.Messages);

    public TokenizedExample Render(PromptCompletionExample example) => Render(example.ToChat());

    public int[] RenderPrompt(IReadOnlyList<ChatMessage> messages) => Tokenizer.Encode(RenderText(ToValues(messages), true).Text);

    private TokenizedExample Encode(IReadOnlyList<ChatMessage> messages)
    {
        var full = RenderText(ToValues(messages), false);
        var spans = HasGenerationBlocks ? [.. full.GenerationSpans] : PrefixSpans(messages, full.Text);
        var ids = new List<int>();
        var mask = new List<bool>();
        int pos = 0;
        void Add(int end, bool trained)
        {
            if (end <= pos) return;
            var piece = Tokenizer.Encode(full.Text[pos..end]);
            ids.AddRange(piece);
            mask.AddRange(Enumerable.Repeat(trained, piece.Length));
            pos = end;
        }
        foreach (var (start, end) in spans.Where(s => s.End > s.Start).OrderBy(s => s.Start))
        {
            if (start < pos) throw new ChatTemplateException($"{Origin}: overlapping assistant spans at character {start}");
            Add(start, false);
            Add(end, true);
        }
        Add(full.Text.Length, false);
        return new TokenizedExample([.. ids], [.. mask]);
    }

    private List<(int Start, int End)> PrefixSpans(IReadOnlyList<ChatMessage> messages, string full)
    {
        var spans = new List<(int, int)>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != ChatRole.Assistant) continue;
            var before = RenderText(ToValues(messages.Take(i)), true).Text;
            var through = RenderText(ToValues(messages.Take(i + 1)), false).Text;
            if (!through.StartsWith(before, StringComparison.Ordinal) || !full.StartsWith(through, StringComparison.Ordinal))
                throw new ChatTemplateException($"{Origin}: cannot mark the assistant's tokens of message {i + 1}: the template has no " +
                    "{% generation %} blocks and rendering the conversation up to that turn is not a prefix of rendering all of it " +
                    $"(the template rewrites earlier turns); add {{% generation %}} blocks to the template or train on single-turn data");
            spans.Add((before.Length, through.Length));
        }
        return spans;
    }
}
