// Chat templates: exact token sequences and train masks, written out by hand for the byte tokenizer.
using PostTrain.Data.Examples;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Tests;

public sealed class ChatTemplateTests
{
    private static readonly ByteTokenizer Tok = ByteTokenizer.Instance;
    private const int Bos = 257, Eos = 258, User = 259, Asst = 260;

    [Fact]
    public void DeepSeek_v3_renders_and_masks_assistant_content_and_eos()
    {
        var chat = new ChatExample([ChatMessage.System("S"), ChatMessage.User("hi"), ChatMessage.Assistant("ok"),
            ChatMessage.User("q"), ChatMessage.Assistant("a")]);

        var r = ChatTemplate.DeepSeekV3(Tok).Render(chat);

        Assert.Equal([Bos, 'S', User, 'h', 'i', Asst, 'o', 'k', Eos, User, 'q', Asst, 'a', Eos], r.InputIds);
        Assert.Equal([false, false, false, false, false, false, true, true, true, false, false, false, true, true], r.TrainMask);
    }

    [Fact]
    public void Rendering_equals_encoding_the_whole_deepseek_string()
    {
        var chat = new ChatExample([ChatMessage.User("the 12345"), ChatMessage.Assistant("the the")]);
        var text = "<｜begin▁of▁sentence｜><｜User｜>the 12345<｜Assistant｜>the the<｜end▁of▁sentence｜>";
        var hand = HandTokenizer.Create();

        Assert.Equal(hand.Encode(text), ChatTemplate.DeepSeekV3(hand).Render(chat).InputIds);
        Assert.Equal(Tok.Encode(text), ChatTemplate.DeepSeekV3(Tok).Render(chat).InputIds);
    }

    [Fact]
    public void System_messages_are_joined_and_placed_after_bos()
    {
        var chat = new ChatExample([ChatMessage.System("A"), ChatMessage.User("u"), ChatMessage.System("B"), ChatMessage.Assistant("x")]);

        var r = ChatTemplate.DeepSeekV3(Tok).Render(chat);

        Assert.Equal([Bos, 'A', '\n', '\n', 'B', User, 'u', Asst, 'x', Eos], r.InputIds);
    }

    [Fact]
    public void Render_prompt_ends_with_the_generation_prefix()
    {
        var prompt = ChatTemplate.DeepSeekV3(Tok).RenderPrompt([ChatMessage.User("hi")]);
        Assert.Equal([Bos, User, 'h', 'i', Asst], prompt);

        var r1 = new ChatTemplate(Tok, ChatTemplateSpec.DeepSeekV3 with { GenerationPrefix = "<｜Assistant｜><think>\n" });
        Assert.Equal([Bos, User, 'h', 'i', Asst, 261, '\n'], r1.RenderPrompt([ChatMessage.User("hi")]));
    }

    [Fact]
    public void Configurable_template_places_every_part()
    {
        var spec = new ChatTemplateSpec
        {
            Bos = "B", SystemPrefix = "[s", SystemSuffix = "]", UserPrefix = "<u>", UserSuffix = "\n",
            AssistantPrefix = "<a>", Eos = "E", AssistantSuffix = "\n",
        };
        var chat = new ChatExample([ChatMessage.System("S"), ChatMessage.User("q"), ChatMessage.Assistant("r")]);

        var r = new ChatTemplate(Tok, spec).Render(chat);

        Assert.Equal("B[sS]<u>q\n<a>rE\n", Tok.Decode(r.InputIds));
        var trained = new string([.. r.InputIds.Where((_, i) => r.TrainMask[i]).Select(id => (char)id)]);
        Assert.Equal("rE", trained);
    }

    [Fact]
    public void Prompt_completion_masks_out_the_prompt()
    {
        var ex = new PromptCompletionExample("2+2=", "4");

        var plain = new ChatTemplate(Tok, ChatTemplateSpec.Plain).Render(ex);
        Assert.Equal([Bos, '2', '+', '2', '=', '4', Eos], plain.InputIds);
        Assert.Equal([false, false, false, false, false, true, true], plain.TrainMask);

        var chat = ChatTemplate.DeepSeekV3(Tok).Render(ex);
        Assert.Equal([Bos, User, '2', '+', '2', '=', Asst, '4', Eos], chat.InputIds);
        Assert.Equal(2, chat.TrainedCount);
    }

    [Fact]
    public void Text_trains_every_token()
    {
        var r = TextRenderer.Render(Tok, new TextExample("ab"));
        Assert.Equal([Bos, 'a', 'b', Eos], r.InputIds);
        Assert.All(r.TrainMask, Assert.True);
    }
}
