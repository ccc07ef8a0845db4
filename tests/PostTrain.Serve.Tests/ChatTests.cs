// /v1/chat/completions and /v1/models through the official OpenAI .NET client, checked against the engine run
// directly on the same model and prompt tokens.
using OpenAI.Chat;
using PostTrain.Data.Tokenizers;
using OpenAI.Models;
using PostTrain.Core.Generation;

namespace PostTrain.Serve.Tests;

public sealed class ChatTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    [Fact]
    public void GreedyChatEqualsTheEngine()
    {
        var c = f.Chat().CompleteChat([new UserChatMessage("What is 2 + 3?")],
            new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12, IncludeLogProbabilities = true }).Value;
        var prompt = f.Engine.ChatPrompt("What is 2 + 3?");
        var r = f.Engine.Generate(prompt, 12)[0];
        var (text, logProbs) = f.Engine.Expected(r);

        Assert.Equal(text, c.Content[0].Text);
        Assert.Equal(r.FinishReason == FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length, c.FinishReason);
        Assert.Equal(prompt.Length, c.Usage.InputTokenCount);
        Assert.Equal(r.Length, c.Usage.OutputTokenCount);
        Assert.Equal(prompt.Length + r.Length, c.Usage.TotalTokenCount);
        Assert.Equal(logProbs.Length, c.ContentTokenLogProbabilities.Count);
        for (int i = 0; i < logProbs.Length; i++)
        {
            Assert.Equal(logProbs[i], c.ContentTokenLogProbabilities[i].LogProbability, 1e-5);
            Assert.Equal(f.Engine.Tokenizer.DecodeGenerated([r.TokenIds[i]]), c.ContentTokenLogProbabilities[i].Token);
            Assert.Empty(c.ContentTokenLogProbabilities[i].TopLogProbabilities);
        }
        Assert.StartsWith("chatcmpl-", c.Id);
        Assert.Equal(f.Server.ModelName, c.Model);
    }

    [Fact]
    public void StreamedDeltasConcatenateToTheNonStreamedText()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 20, IncludeLogProbabilities = true };
        var messages = new ChatMessage[] { new SystemChatMessage("Be brief."), new UserChatMessage("Name a colour.") };
        var whole = f.Chat().CompleteChat(messages, options).Value;

        var text = new System.Text.StringBuilder();
        var logProbs = new List<float>();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        foreach (var u in f.Chat().CompleteChatStreaming(messages, options))
        {
            updates++;
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
            logProbs.AddRange(u.ContentTokenLogProbabilities.Select(t => t.LogProbability));
            finish ??= u.FinishReason;
            usage ??= u.Usage;   // the SDK asks for stream_options.include_usage
        }
        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.Equal(whole.ContentTokenLogProbabilities.Select(t => t.LogProbability), logProbs);
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
        Assert.True(updates >= whole.Usage.OutputTokenCount, $"{updates} updates for {whole.Usage.OutputTokenCount} tokens: not streamed per token");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StopStringEndsTheChoiceAndIsCutFromTheText(bool stream)
    {
        const string user = "Tell me a story.";
        var full = f.Engine.Generate(f.Engine.ChatPrompt(user), 24)[0];
        var fullText = f.Engine.Expected(full).Text;
        // A stop string taken from the reference output (a character that is not a partial UTF-8 placeholder).
        int at = Enumerable.Range(1, fullText.Length - 1).First(i => fullText[i] != '\uFFFD');
        string stop = fullText[at].ToString();
        string expected = fullText[..fullText.IndexOf(stop, StringComparison.Ordinal)];
        int tokensUntilStop = Enumerable.Range(1, full.Length).First(k => f.Engine.Tokenizer.DecodeGenerated(full.TokenIds[..k]).Contains(stop));

        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24, StopSequences = { stop } };
        string text;
        ChatFinishReason? finish;
        int? outputTokens;
        if (stream)
        {
            var updates = f.Chat().CompleteChatStreaming([new UserChatMessage(user)], options).ToList();
            text = string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text));
            finish = updates.Select(u => u.FinishReason).First(r => r is not null);
            outputTokens = updates.Select(u => u.Usage).Last(x => x is not null)?.OutputTokenCount;
        }
        else
        {
            var c = f.Chat().CompleteChat([new UserChatMessage(user)], options).Value;
            (text, finish, outputTokens) = (c.Content[0].Text, c.FinishReason, c.Usage.OutputTokenCount);
        }
        Assert.Equal(expected, text);
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Equal(tokensUntilStop, outputTokens);
    }

    [Fact]
    public void MaxTokensGivesFinishReasonLength()
    {
        var c = f.Chat().CompleteChat([new UserChatMessage("Count to ten.")], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 3 }).Value;
        var r = f.Engine.Generate(f.Engine.ChatPrompt("Count to ten."), 3)[0];
        Assert.Equal(r.Length, c.Usage.OutputTokenCount);
        Assert.Equal(r.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, c.FinishReason);
        Assert.Equal(f.Engine.Expected(r).Text, c.Content[0].Text);
    }

    [Fact]
    public void SeededSamplingIsReproducibleAndEqualsTheEngine()
    {
        var options = new ChatCompletionOptions { Temperature = 0.9f, MaxOutputTokenCount = 10, Seed = 1234, IncludeLogProbabilities = true };
        var a = f.Chat().CompleteChat([new UserChatMessage("Pick a word.")], options).Value;
        var b = f.Chat().CompleteChat([new UserChatMessage("Pick a word.")], options).Value;
        var r = f.Engine.Generate(f.Engine.ChatPrompt("Pick a word."), 10, temperature: 0.9f, seed: 1234)[0];
        var (text, logProbs) = f.Engine.Expected(r);
        Assert.Equal(text, a.Content[0].Text);
        Assert.Equal(a.Content[0].Text, b.Content[0].Text);
        Assert.Equal(logProbs.Length, a.ContentTokenLogProbabilities.Count);
        for (int i = 0; i < logProbs.Length; i++) Assert.Equal(logProbs[i], a.ContentTokenLogProbabilities[i].LogProbability, 1e-5);
    }

    [Fact]
    public void ModelsListsTheServedModel()
    {
        var models = new OpenAIModelClient(new System.ClientModel.ApiKeyCredential("unused"),
            new OpenAI.OpenAIClientOptions { Endpoint = f.Server.BaseUri }).GetModels().Value;
        var m = Assert.Single(models);
        Assert.Equal("tiny-moe", m.Id);
        Assert.Equal("posttrain", m.OwnedBy);
        Assert.Equal("tiny-moe", f.Server.ModelName);
        Assert.Equal("127.0.0.1", f.Server.BaseUri.Host);
        Assert.EndsWith("/v1/", f.Server.BaseUri.AbsolutePath);
    }
}
