// Bad requests get OpenAI's error JSON with the right status and the field at fault, a failing engine call fails only
// its own requests, a client that leaves mid-stream stops its rows, and the server keeps serving after all of them.
using System.Net;
using System.Text.Json;

namespace PostTrain.Serve.Tests;

public sealed class ErrorTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    private const string Msgs = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";

    [Theory]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", ", 400, null, null)]                                        // malformed JSON
    [InlineData("chat/completions", "[1, 2]", 400, null, null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\"}", 400, "messages", null)]
    [InlineData("chat/completions", "{" + Msgs + "}", 400, "model", null)]
    [InlineData("chat/completions", "{\"model\": \"gpt-9\", " + Msgs + "}", 404, "model", "model_not_found")]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", \"messages\": []}", 400, "messages", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", \"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", 400, "messages[0].role", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", \"messages\": [{\"role\": \"user\"}]}", 400, "messages[0].content", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"n\": 0}", 400, "n", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"n\": 1000}", 400, "n", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"max_tokens\": 0}", 400, "max_tokens", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"max_tokens\": 5000}", 400, "max_tokens", "context_length_exceeded")]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"max_completion_tokens\": -1}", 400, "max_completion_tokens", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"temperature\": \"hot\"}", 400, "temperature", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"temperature\": 3}", 400, "temperature", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"top_p\": 0}", 400, "top_p", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"stop\": 5}", 400, "stop", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"logprobs\": true, \"top_logprobs\": 3}", 400, "top_logprobs", null)]
    [InlineData("chat/completions", "{\"model\": \"tiny-moe\", " + Msgs + ", \"stream\": \"yes\"}", 400, "stream", null)]
    [InlineData("completions", "{\"model\": \"tiny-moe\", \"prompt\": \"hi\", \"logprobs\": 2}", 400, "logprobs", null)]
    [InlineData("completions", "{\"model\": \"tiny-moe\", \"prompt\": \"\"}", 400, "prompt", null)]
    [InlineData("completions", "{\"model\": \"tiny-moe\", \"prompt\": [1, 99999]}", 400, "prompt[1]", null)]
    [InlineData("completions", "{\"model\": \"tiny-moe\", \"prompt\": {\"text\": \"hi\"}}", 400, "prompt", null)]
    public async Task BadRequestGetsErrorJsonAndTheServerStillServes(string path, string body, int status, string? param, string? code)
    {
        using var r = await f.Post(path, body);
        var text = await r.Content.ReadAsStringAsync();
        Assert.Equal(status, (int)r.StatusCode);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(param, error.GetProperty("param").GetString());
        if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());
        if (param is not null) Assert.Contains(param.Split('[')[0], error.GetProperty("message").GetString());
        await AssertGoodRequestWorks();
    }

    [Fact]
    public async Task PromptLongerThanTheContextIsRejected()
    {
        var longPrompt = new string('x', f.Server.MaxModelLen + 5);
        using var r = await f.Post("completions", JsonSerializer.Serialize(new { model = "tiny-moe", prompt = longPrompt }));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var error = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("prompt", error.GetProperty("param").GetString());
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        await AssertGoodRequestWorks();
    }

    [Fact]
    public async Task UnknownRouteIs404Json()
    {
        using var r = await f.Http.GetAsync(new Uri(f.Server.BaseUri, "engines"));
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.True(JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.TryGetProperty("error", out _));
    }

    [Fact]
    public async Task GenerationFailureFailsOnlyItsBatch()
    {
        f.Server.Scheduler.BeforeGenerate = jobs =>
        {
            if (jobs.Any(j => j.Request.MaxTokens == 7)) throw new InvalidOperationException("injected failure");
        };
        try
        {
            using var r = await f.Post("chat/completions", $"{{\"model\": \"tiny-moe\", {Msgs}, \"max_tokens\": 7}}");
            Assert.Equal(HttpStatusCode.InternalServerError, r.StatusCode);
            var error = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("server_error", error.GetProperty("type").GetString());
            Assert.Contains("injected failure", error.GetProperty("message").GetString());
            await AssertGoodRequestWorks();
        }
        finally { f.Server.Scheduler.BeforeGenerate = null; }
    }

    [Fact]
    public async Task ClientLeavingMidStreamStopsItsRows()
    {
        long abortedBefore = f.Server.Stats.AbortedRequests, tokensBefore = f.Server.Stats.GeneratedTokens;
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(f.Server.BaseUri, "chat/completions"))
        {
            Content = new StringContent($"{{\"model\": \"tiny-moe\", {Msgs}, \"max_tokens\": 900, \"temperature\": 0, \"stream\": true}}",
                System.Text.Encoding.UTF8, "application/json"),
        };
        using (var response = await f.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: {", await reader.ReadLineAsync());
        }   // disposing the response closes the connection mid-stream
        for (int i = 0; i < 1200 && f.Server.Stats.AbortedRequests == abortedBefore; i++) await Task.Delay(50);   // up to 60 s: a hang guard
        Assert.Equal(abortedBefore + 1, f.Server.Stats.AbortedRequests);
        Assert.True(f.Server.Stats.GeneratedTokens - tokensBefore < 900, $"{f.Server.Stats.GeneratedTokens - tokensBefore} tokens: the rows were not stopped");
        await AssertGoodRequestWorks();
    }

    [Fact]
    public async Task BodyOverTheLimitIs413WithErrorJsonAndTheServerStillServes()
    {
        // 60 MB of valid JSON, twice Kestrel's default 30 MB limit: 413 (not 500) with OpenAI's error object. The client
        // asks "Expect: 100-continue" as curl does for large bodies, so the 413 arrives instead of the upload (a client
        // that streams the whole body into a closing connection may see a reset instead of the answer).
        var body = "{\"model\": \"tiny-moe\", \"prompt\": \"" + new string('x', 60 << 20) + "\"}";
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(f.Server.BaseUri, "completions"))
        {
            Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.ExpectContinue = true;
        using var r = await f.Http.SendAsync(request);
        var text = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains("larger than the server accepts (30,000,000 bytes)", error.GetProperty("message").GetString());
        await AssertGoodRequestWorks();
    }

    private async Task AssertGoodRequestWorks()
    {
        var json = await f.PostOk("chat/completions", new { model = "tiny-moe", messages = new[] { new { role = "user", content = "ok?" } }, max_tokens = 4, temperature = 0 });
        var expected = f.Engine.Expected(f.Engine.Generate(f.Engine.ChatPrompt("ok?"), 4)[0]).Text;
        Assert.Equal(expected, json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }
}
