// The chat-template factory: each name gives the template it names; an unknown name is an error naming the key.
using PostTrain.Data.Examples;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Tests.Templates;

public sealed class ChatTemplatesTests
{
    private static readonly ByteTokenizer Tok = ByteTokenizer.Instance;

    [Fact]
    public void Builtin_names_give_the_builtin_templates()
    {
        var chat = new ChatExample([ChatMessage.User("hi"), ChatMessage.Assistant("ok")]);
        // deepseek_v3: BOS <｜User｜> h i <｜Assistant｜> o k EOS (ids 257 / 259 / 260 / 258 of the byte tokenizer)
        Assert.Equal([257, 259, 'h', 'i', 260, 'o', 'k', 258], ChatTemplates.Resolve("deepseek_v3", Tok).Render(chat).InputIds);
        // plain: BOS h i o k EOS
        Assert.Equal([257, 'h', 'i', 'o', 'k', 258], ChatTemplates.Resolve("plain", Tok).Render(chat).InputIds);
    }

    [Fact]
    public void Unknown_name_names_the_key_and_the_choices()
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplates.Resolve("chatml", Tok, key: "teacher.chat_template"));
        Assert.Contains("teacher.chat_template: 'chatml'", e.Message);
        Assert.Contains("deepseek_v3", e.Message);
    }
}
