// /v1/completions (no SDK API for it: raw HTTP) and n > 1, checked against the engine run directly.
using System.Text;
using System.Text.Json;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Serve.Tests;

public sealed class CompletionsTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task GreedyCompletionWithLogProbsEqualsTheEngine()
    {
        const string prompt = "The capital of France is";
        var ids = f.Engine.Tokenizer.Encode(prompt);
        var r = f.Engine.Generate(ids, 10)[0];
        var (text, logProbs) = f.Engine.Expected(r);
        foreach (object p in new object[] { prompt, ids })   // a string, and the same prompt as token ids
        {
            var json = await f.PostOk("completions", new { model = "tiny-moe", prompt = p, max_tokens = 10, temperature = 0, logprobs = 0 });
            Assert.Equal("text_completion", json.GetProperty("object").GetString());
            Assert.StartsWith("cmpl-", json.GetProperty("id").GetString());
            var choice = Assert.Single(json.GetProperty("choices").EnumerateArray().ToList());
            Assert.Equal(0, choice.GetProperty("index").GetInt32());
            Assert.Equal(text, choice.GetProperty("text").GetString());
            var lp = choice.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            Assert.Equal(logProbs.Length, lp.Length);
            for (int i = 0; i < lp.Length; i++) Assert.Equal(logProbs[i], lp[i], 1e-5);
            var usage = json.GetProperty("usage");
            Assert.Equal(ids.Length, usage.GetProperty("prompt_tokens").GetInt32());
            Assert.Equal(r.Length, usage.GetProperty("completion_tokens").GetInt32());
            Assert.Equal(ids.Length + r.Length, usage.GetProperty("total_tokens").GetInt32());
        }
    }

    [Fact]
    public async Task StreamedCompletionConcatenatesToTheWholeOne()
    {
        var body = new { model = "tiny-moe", prompt = "Once upon a time", max_tokens = 15, temperature = 0 };
        var whole = await f.PostOk("completions", body);
        var events = await ReadStream(await f.Post("completions", JsonSerializer.Serialize(new
            { body.model, body.prompt, body.max_tokens, body.temperature, stream = true, stream_options = new { include_usage = true } })));
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        var text = string.Concat(chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("text").GetString()));
        Assert.Equal(whole.GetProperty("choices")[0].GetProperty("text").GetString(), text);
        Assert.Equal(whole.GetProperty("usage").GetRawText(), chunks[^1].GetProperty("usage").GetRawText());
        Assert.Empty(chunks[^1].GetProperty("choices").EnumerateArray());
    }

    [Fact]
    public async Task NChoicesAreTheEngineRowsOfOneSeededCall()
    {
        var json = await f.PostOk("chat/completions", new
        {
            model = "tiny-moe", messages = new[] { new { role = "user", content = "Say something." } },
            n = 3, temperature = 1.0, seed = 99, max_tokens = 8, logprobs = true,
        });
        var expected = f.Engine.Generate(f.Engine.ChatPrompt("Say something."), 8, temperature: 1.0, seed: 99, n: 3);
        var choices = json.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(3, choices.Count);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(i, choices[i].GetProperty("index").GetInt32());
            var (text, logProbs) = f.Engine.Expected(expected[i]);
            Assert.Equal(text, choices[i].GetProperty("message").GetProperty("content").GetString());
            var lp = choices[i].GetProperty("logprobs").GetProperty("content").EnumerateArray().Select(e => e.GetProperty("logprob").GetSingle()).ToArray();
            Assert.Equal(logProbs.Length, lp.Length);
            for (int t = 0; t < lp.Length; t++) Assert.Equal(logProbs[t], lp[t], 1e-5);
        }
        Assert.Equal(expected.Sum(r => r.Length), json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(f.Engine.ChatPrompt("Say something.").Length, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task StreamedNChoicesConcatenatePerIndexToTheWholeResponse()
    {
        var body = new { model = "tiny-moe", messages = new[] { new { role = "user", content = "Go." } }, n = 2, temperature = 1.0, seed = 5, max_tokens = 9, logprobs = true };
        var whole = await f.PostOk("chat/completions", body);
        var events = await ReadStream(await f.Post("chat/completions", JsonSerializer.Serialize(new
            { body.model, body.messages, body.n, body.temperature, body.seed, body.max_tokens, body.logprobs, stream = true })));
        Assert.Equal("[DONE]", events[^1]);
        var choices = events[..^1].SelectMany(e => JsonDocument.Parse(e).RootElement.GetProperty("choices").EnumerateArray()).ToList();
        Assert.All(choices, c => Assert.True(c.TryGetProperty("delta", out _)));
        for (int i = 0; i < 2; i++)
        {
            var mine = choices.Where(c => c.GetProperty("index").GetInt32() == i).ToList();
            Assert.Equal("assistant", mine[0].GetProperty("delta").GetProperty("role").GetString());
            string text = string.Concat(mine.Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
            var expected = whole.GetProperty("choices")[i];
            Assert.Equal(expected.GetProperty("message").GetProperty("content").GetString(), text);
            Assert.Equal(expected.GetProperty("finish_reason").GetString(), mine[^1].GetProperty("finish_reason").GetString());
            var streamedLp = mine.Where(c => c.GetProperty("logprobs").ValueKind == JsonValueKind.Object)
                .SelectMany(c => c.GetProperty("logprobs").GetProperty("content").EnumerateArray()).Select(e => e.GetProperty("logprob").GetSingle());
            Assert.Equal(expected.GetProperty("logprobs").GetProperty("content").EnumerateArray().Select(e => e.GetProperty("logprob").GetSingle()), streamedLp);
        }
    }

    /// <summary>The "data: " payloads of a server-sent event stream, in order.</summary>
    internal static async Task<List<string>> ReadStream(HttpResponseMessage response)
    {
        using (response)
        {
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            var text = await response.Content.ReadAsStringAsync();
            var events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.All(events, e => Assert.StartsWith("data: ", e));
            return events.Select(e => e["data: ".Length..]).ToList();
        }
    }
}
