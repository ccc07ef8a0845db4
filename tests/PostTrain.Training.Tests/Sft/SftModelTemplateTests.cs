// SFT uses the model directory's own chat template by default (data.chat_template: auto) with the recipe's
// template kwargs: the packed row's ids are the template's text and only the assistant's turn is trained.
using PostTrain.Data;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Recipes;
using PostTrain.Training.Sft;

namespace PostTrain.Training.Tests.Sft;

public sealed class SftModelTemplateTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "posttrain-sfttpl-" + Guid.NewGuid().ToString("N"));

    public SftModelTemplateTests() => Directory.CreateDirectory(_dir);
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    [Fact]
    public void Auto_renders_with_the_model_template_and_masks_the_assistant_turn()
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), System.Text.Json.JsonSerializer.Serialize(new
        {
            eos_token = "<|end|>",
            chat_template = "{% for m in messages %}<{{ m.role }}{{ '!' if loud }}>{{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}{% if add_generation_prompt %}<assistant{{ '!' if loud }}>{% endif %}",
        }));
        var data = Path.Combine(_dir, "chat.jsonl");
        File.WriteAllText(data, """{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}""" + "\n");
        var cfg = new SftDataConfig { Path = data, Format = SftFormat.Messages, Packed = false, Shuffle = false, BatchSize = 1, MaxSeqLen = 64,
            ChatTemplateKwargs = new() { ["loud"] = "true" } };
        Assert.Equal("auto", cfg.ChatTemplate);
        var row = new SftBatches(cfg, ByteTokenizer.Instance, new DataStats(), _dir).Epoch(data, 0, 0, false).First().Rows[0];
        var tok = ByteTokenizer.Instance;
        var ids = row.InputIds.Where((_, i) => row.SequenceIds[i] >= 0).ToArray();
        Assert.Equal("<user!>2+2?<assistant!>4<|end|>", tok.Decode(ids));   // trim_blocks drops the newline after endif
        // trained: the assistant's text after the generation prompt
        var trained = row.Labels.Where(l => l != -100).ToArray();
        Assert.Equal("4<|end|>", tok.Decode(trained));
    }

    [Fact]
    public void Chat_template_kwargs_bind_from_yaml_and_overrides()
    {
        var cfg = RecipeDocument.FromText("""
            recipe: sft
            output_dir: runs/x
            model: { path: micro-moe }
            data: { path: d.jsonl, chat_template: model, chat_template_kwargs: { enable_thinking: false } }
            """, "test.yaml", ["data.chat_template_kwargs.tools_mode=\"x\""]).Bind<SftConfig>();
        Assert.Equal("model", cfg.Data.ChatTemplate);
        var kwargs = PostTrain.Data.Templates.ChatTemplates.ParseKwargs(cfg.Data.ChatTemplateKwargs);
        Assert.Equal(false, kwargs["enable_thinking"]);
        Assert.Equal("x", kwargs["tools_mode"]);
    }
}
