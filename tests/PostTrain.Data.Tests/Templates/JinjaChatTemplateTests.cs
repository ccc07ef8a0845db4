// A model's own Jinja template as the chat template of SFT/GRPO/serve: text, ids and train masks from
// {% generation %} blocks or from prefix renders, and the factory's choice of template for a model directory.
using PostTrain.Data.Examples;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Tests.Templates;

public sealed class JinjaChatTemplateTests
{
    private static readonly ByteTokenizer Tok = ByteTokenizer.Instance;
    private static readonly ChatExample Chat = new([ChatMessage.System("S"), ChatMessage.User("hi"), ChatMessage.Assistant("ok"),
        ChatMessage.User("q"), ChatMessage.Assistant("a")]);

    private const string ChatMl =
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    private static string Trained(TokenizedExample r) => Tok.Decode(r.InputIds.Where((_, i) => r.TrainMask[i]).ToArray());

    [Fact]
    public void Real_deepseek_v3_template_gives_the_builtin_ids_and_mask()
    {
        var source = File.ReadAllText(Path.Combine(SharedChatTemplates.Dir(), "templates", "deepseek-v3.jinja"));
        var special = new Dictionary<string, object?> { ["bos_token"] = DeepSeekTokens.Bos, ["eos_token"] = DeepSeekTokens.Eos };
        var jinja = new JinjaChatTemplate(Tok, source, "deepseek-v3.jinja", special);
        var builtin = ChatTemplate.DeepSeekV3(Tok);
        var a = jinja.Render(Chat);
        var b = builtin.Render(Chat);
        Assert.Equal(b.InputIds, a.InputIds);
        Assert.Equal(b.TrainMask, a.TrainMask);
        Assert.Equal(builtin.RenderPrompt([ChatMessage.User("hi")]), jinja.RenderPrompt([ChatMessage.User("hi")]));
    }

    [Fact]
    public void Prefix_renders_mark_each_assistant_turn_with_its_end_marker()
    {
        var t = new JinjaChatTemplate(Tok, ChatMl, "chatml");
        var r = t.Render(Chat);
        Assert.Equal("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n" +
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n", Tok.Decode(r.InputIds));
        Assert.Equal("ok<|im_end|>\na<|im_end|>\n", Trained(r));
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", Tok.Decode(t.RenderPrompt([ChatMessage.User("hi")])));
    }

    [Fact]
    public void Generation_blocks_mark_exactly_their_text()
    {
        var src = "{% for m in messages %}[{{ m.role }}]{% if m.role == 'assistant' %}{% generation %}{{ m.content }}</s>{% endgeneration %}\n" +
                  "{% else %}{{ m.content }}\n{% endif %}{% endfor %}";
        var t = new JinjaChatTemplate(Tok, src, "gen");
        Assert.True(t.HasGenerationBlocks);
        var r = t.Render(Chat);
        Assert.Equal("[system]S\n[user]hi\n[assistant]ok</s>[user]q\n[assistant]a</s>", Tok.Decode(r.InputIds));   // trim_blocks eats the newline after endgeneration
        Assert.Equal("ok</s>a</s>", Trained(r));
    }

    [Fact]
    public void Template_that_rewrites_earlier_turns_cannot_give_masks_without_generation_blocks()
    {
        // the turn count printed first changes with every added message, so no render is a prefix of the next
        var t = new JinjaChatTemplate(Tok, "{{ messages|length }}|{% for m in messages %}{{ m.content }};{% endfor %}", "counting.jinja");
        var e = Assert.Throws<ChatTemplateException>(() => t.Render(Chat));
        Assert.Contains("counting.jinja: cannot mark the assistant's tokens of message 3", e.Message);
    }

    [Fact]
    public void Raise_exception_is_an_error_naming_the_template()
    {
        var t = new JinjaChatTemplate(Tok, "{{ raise_exception('System role not supported') }}", "gemma.jinja");
        var e = Assert.Throws<ChatTemplateException>(() => t.RenderPrompt([ChatMessage.User("hi")]));
        Assert.Equal("gemma.jinja: the template raised: line 1: System role not supported", e.Message);
    }

    [Fact]
    public void Factory_uses_the_model_directory_template_its_special_tokens_and_kwargs()
    {
        using var tmp = new TempDir();
        var template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}>{% if think %}T{% endif %}{% endif %}";
        tmp.File("tokenizer_config.json", System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["bos_token"] = new Dictionary<string, object> { ["content"] = "<B>" }, ["eos_token"] = "</s>", ["chat_template"] = template,
        }));
        var prompt = ChatTemplates.Resolve("auto", Tok, tmp.Path, kwargs: ChatTemplates.ParseKwargs(new Dictionary<string, string> { ["think"] = "true" }));
        Assert.Equal("<B>hi>T", Tok.Decode(prompt.RenderPrompt([ChatMessage.User("hi")])));
        var noThink = ChatTemplates.Resolve("model", Tok, tmp.Path, kwargs: ChatTemplates.ParseKwargs(new Dictionary<string, string> { ["think"] = "false" }));
        Assert.Equal("<B>hi>", Tok.Decode(noThink.RenderPrompt([ChatMessage.User("hi")])));
        // chat_template.jinja wins over tokenizer_config.json, as in transformers
        tmp.File("chat_template.jinja", "J{{ bos_token }}{{ messages[0].content }}");
        Assert.Equal("J<B>hi", Tok.Decode(ChatTemplates.Resolve("model", Tok, tmp.Path).RenderPrompt([ChatMessage.User("hi")])));
    }

    [Fact]
    public void Factory_picks_named_templates_and_falls_back_to_deepseek_v3_for_auto()
    {
        using var tmp = new TempDir();
        Assert.IsType<ChatTemplate>(ChatTemplates.Resolve("auto", Tok, tmp.Path));
        Assert.IsType<ChatTemplate>(ChatTemplates.Resolve("auto", Tok, "micro-moe"));
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplates.Resolve("model", Tok, tmp.Path, key: "data.chat_template"));
        Assert.Contains("data.chat_template: model directory", e.Message);
        tmp.File("tokenizer_config.json", """{"eos_token": "</s>", "chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "U"}]}""");
        Assert.Equal("D", Tok.Decode(ChatTemplates.Resolve("model", Tok, tmp.Path).RenderPrompt([])));
        Assert.Equal("U", Tok.Decode(ChatTemplates.Resolve("model:tool_use", Tok, tmp.Path).RenderPrompt([])));
        Assert.Throws<ChatTemplateException>(() => ChatTemplates.Resolve("model:rag", Tok, tmp.Path));
        var file = tmp.File("mine.jinja", "F{{ eos_token }}");
        Assert.Equal("F</s>", Tok.Decode(ChatTemplates.Resolve(file, Tok, tmp.Path).RenderPrompt([])));
        Assert.Throws<ChatTemplateException>(() => ChatTemplates.Resolve(Path.Combine(tmp.Path, "missing.jinja"), Tok));
    }
}
