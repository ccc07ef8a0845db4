// Train masks from the 20 real templates of ../shared/chat-templates on a two-turn chat: the ids decode to exactly
// the template's text, and the trained tokens are each assistant turn's content plus the template's end-of-turn
// text; templates that rewrite earlier turns refuse with a clear error instead of guessing.
using PostTrain.Data.Examples;
using PostTrain.Data.Templates;
using PostTrain.Data.Templates.Jinja;
using PostTrain.Data.Tokenizers;
using Xunit.Abstractions;

namespace PostTrain.Data.Tests.Templates;

public sealed class RealTemplateMaskTests(ITestOutputHelper output)
{
    [Fact]
    public void Masks_are_exact_or_refused()
    {
        var tok = ByteTokenizer.Instance;
        var chat = new ChatExample([ChatMessage.User("What is 2+2?"), ChatMessage.Assistant("It is 4."), ChatMessage.User("And 3+3?"), ChatMessage.Assistant("6.")]);
        var byTemplate = SharedChatTemplates.Cases().GroupBy(c => c.TemplateId).Select(g => g.First()).OrderBy(c => c.TemplateId).ToList();
        Assert.Equal(20, byTemplate.Count);
        var refused = new List<string>();
        foreach (var c in byTemplate)
        {
            var special = c.SpecialTokens.ToDictionary(kv => (string)kv.Key, kv => kv.Value);
            var t = new JinjaChatTemplate(tok, c.Template, c.TemplateId, special, now: () => c.Now);
            TokenizedExample r;
            try { r = t.Render(chat); }
            catch (ChatTemplateException e)
            {
                Assert.Contains($"{c.TemplateId}: cannot mark the assistant's tokens", e.Message);
                refused.Add(c.TemplateId);
                continue;
            }
            var full = t.RenderText(JinjaChatTemplate.ToValues(chat.Messages), false).Text;
            Assert.Equal(full, tok.Decode(r.InputIds));
            var trained = tok.Decode(r.InputIds.Where((_, i) => r.TrainMask[i]).ToArray());
            int first = trained.IndexOf("It is 4.", StringComparison.Ordinal), second = trained.IndexOf("6.", StringComparison.Ordinal);
            Assert.True(first >= 0 && second > first, $"{c.TemplateId}: trained text {trained}");
            Assert.DoesNotContain("2+2", trained);
            Assert.DoesNotContain("3+3", trained);
        }
        output.WriteLine("refused: " + string.Join(", ", refused));
        // Qwen3 adds an empty <think></think> to an assistant turn only while it is the latest one; Phi-3 ends every
        // conversation without a generation prompt with <|endoftext|>: neither is a prefix of the longer chat
        Assert.Equal(["phi-3-mini-4k-instruct", "qwen3-0.6b"], refused);
    }
}
