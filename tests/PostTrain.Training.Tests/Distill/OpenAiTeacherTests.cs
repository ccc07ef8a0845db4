// The OpenAI-compatible teacher against a loopback HTTP stub (HttpListener on 127.0.0.1): transient failures (500,
// 429, a request past its timeout) are retried with backoff and then succeed; exhausted retries and config errors
// (404) stop with a TeacherException; a 400 is that one sample's error; at most max_concurrency requests are in
// flight; the API key comes from the named environment variable; reasoning_content is put back as <think>.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using PostTrain.Data.Examples;
using PostTrain.Training.Distill;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Tests.Distill;

/// <summary>A chat completions endpoint on a free loopback port; the handler gets the 1-based request number and the body.</summary>
internal sealed class StubChatServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<int, string, HttpListenerContext, Task> _handler;
    private readonly Task _loop;
    private int _requests, _inFlight, _maxInFlight;

    public string BaseUrl { get; }
    public int Requests => Volatile.Read(ref _requests);
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);
    public List<(string Body, string? Authorization)> Received { get; } = [];

    public StubChatServer(Func<int, string, HttpListenerContext, Task> handler)
    {
        // HttpListener cannot bind port 0: take a free port from the OS and retry if another process grabs it first.
        for (int attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            try
            {
                _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
                _listener.Start();
                BaseUrl = $"http://127.0.0.1:{port}/v1/";
                break;
            }
            catch (HttpListenerException) when (attempt < 20)
            {
                _listener.Prefixes.Clear();
            }
        }
        _handler = handler;
        _loop = Task.Run(Loop);
    }

    private async Task Loop()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            _ = Task.Run(async () =>
            {
                int n = Interlocked.Increment(ref _requests);
                int now = Interlocked.Increment(ref _inFlight);
                var body = await new StreamReader(ctx.Request.InputStream).ReadToEndAsync();
                lock (Received)
                {
                    _maxInFlight = Math.Max(_maxInFlight, now);
                    Received.Add((body, ctx.Request.Headers["Authorization"]));
                }
                try { await _handler(n, body, ctx); }
                catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException) { }   // client gave up (timeout)
                finally { Interlocked.Decrement(ref _inFlight); try { ctx.Response.Close(); } catch (Exception) { } }
            });
        }
    }

    public static async Task Reply(HttpListenerContext ctx, int status, string body = "{}", string? retryAfter = null)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        if (retryAfter is not null) ctx.Response.Headers["Retry-After"] = retryAfter;
        var bytes = Encoding.UTF8.GetBytes(body);
        await ctx.Response.OutputStream.WriteAsync(bytes);
    }

    public static string Completion(string content, int promptTokens = 5, int completionTokens = 3, string finish = "stop", string? reasoning = null) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["id"] = "chatcmpl-1", ["object"] = "chat.completion", ["created"] = 1, ["model"] = "stub",
            ["choices"] = new object[]
            {
                new Dictionary<string, object?>
                {
                    ["index"] = 0, ["finish_reason"] = finish,
                    ["message"] = reasoning is null
                        ? new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = content }
                        : new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = content, ["reasoning_content"] = reasoning },
                },
            },
            ["usage"] = new { prompt_tokens = promptTokens, completion_tokens = completionTokens, total_tokens = promptTokens + completionTokens },
        });

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}

public sealed class OpenAiTeacherTests
{
    private static TeacherConfig Config(StubChatServer s, int maxRetries = 4, double timeout = 10, int concurrency = 4, string? keyEnv = null) => new()
    {
        Kind = TeacherKind.OpenAi, BaseUrl = s.BaseUrl, Model = "stub-model", MaxRetries = maxRetries, TimeoutSeconds = timeout,
        MaxConcurrency = concurrency, InitialBackoffSeconds = 0.05, MaxBackoffSeconds = 0.2, ApiKeyEnv = keyEnv,
    };

    private static readonly DistillSamplingConfig Sampling = new() { Temperature = 0.7, TopP = 0.9, MaxTokens = 32 };

    private static TeacherRequest Request(string prompt, long seed = 42) => new([ChatMessage.User(prompt)], seed);

    [Fact]
    public async Task Retries_500_and_429_with_backoff_then_returns_the_completion()
    {
        using var server = new StubChatServer((n, _, ctx) => n switch
        {
            1 => StubChatServer.Reply(ctx, 500, "{\"error\": {\"message\": \"boom\"}}"),
            2 => StubChatServer.Reply(ctx, 429, "{\"error\": {\"message\": \"slow down\"}}", retryAfter: "0"),
            _ => StubChatServer.Reply(ctx, 200, StubChatServer.Completion("The answer is \\boxed{4}.", 11, 7)),
        });
        using var teacher = new OpenAiTeacher(Config(server), seed: 1);
        var sw = Stopwatch.StartNew();
        var samples = await teacher.GenerateAsync([Request("2+2?")], Sampling, CancellationToken.None);

        var s = Assert.Single(samples);
        Assert.Equal("The answer is \\boxed{4}.", s.Text);
        Assert.Equal((11, 7, "stop"), (s.PromptTokens, s.CompletionTokens, s.FinishReason));
        Assert.Null(s.Error);
        Assert.Equal(3, server.Requests);
        Assert.Equal(2, teacher.Retries);
        // backoff: at least half of 0.05 s, then half of 0.1 s
        Assert.True(sw.Elapsed.TotalSeconds >= 0.075, $"{sw.Elapsed.TotalSeconds} s");
        using var body = JsonDocument.Parse(server.Received[2].Body);
        var root = body.RootElement;
        Assert.Equal("stub-model", root.GetProperty("model").GetString());
        Assert.Equal(42, root.GetProperty("seed").GetInt64());
        Assert.Equal(0.7, root.GetProperty("temperature").GetDouble(), 5);
        Assert.Equal(0.9, root.GetProperty("top_p").GetDouble(), 5);
        Assert.Equal("2+2?", root.GetProperty("messages")[0].GetProperty("content").GetString());
    }

    [Fact]
    public async Task A_request_past_its_timeout_is_retried()
    {
        using var server = new StubChatServer(async (n, _, ctx) =>
        {
            if (n == 1) await Task.Delay(3000);
            await StubChatServer.Reply(ctx, 200, StubChatServer.Completion("late but fine"));
        });
        using var teacher = new OpenAiTeacher(Config(server, timeout: 0.5), seed: 1);
        var sw = Stopwatch.StartNew();
        var s = Assert.Single(await teacher.GenerateAsync([Request("q")], Sampling, CancellationToken.None));
        Assert.Equal("late but fine", s.Text);
        Assert.Equal(1, teacher.Retries);
        // It gave up on the first request (one retry, the answer came from the second) after waiting its 0.5 s; no upper
        // bound on the time: a loaded machine may be slow, and the retry count already shows it did not wait 3 s.
        Assert.True(sw.Elapsed.TotalSeconds >= 0.5, $"{sw.Elapsed.TotalSeconds} s");
        Assert.Equal(2, server.Requests);
    }

    [Fact]
    public async Task Exhausted_retries_and_config_errors_stop_with_a_teacher_error()
    {
        using (var down = new StubChatServer((_, _, ctx) => StubChatServer.Reply(ctx, 503)))
        {
            using var teacher = new OpenAiTeacher(Config(down, maxRetries: 2), seed: 1);
            var e = await Assert.ThrowsAsync<TeacherException>(() => teacher.GenerateAsync([Request("q")], Sampling, CancellationToken.None));
            Assert.Contains("after 3 attempts: HTTP 503", e.Message);
            Assert.Equal(3, down.Requests);
        }
        using (var wrongModel = new StubChatServer((_, _, ctx) => StubChatServer.Reply(ctx, 404, "{\"error\": {\"message\": \"model not found\"}}")))
        {
            using var teacher = new OpenAiTeacher(Config(wrongModel), seed: 1);
            var e = await Assert.ThrowsAsync<TeacherException>(() => teacher.GenerateAsync([Request("q")], Sampling, CancellationToken.None));
            Assert.Contains("HTTP 404", e.Message);
            Assert.Contains("teacher.model", e.Message);
            Assert.Equal(1, wrongModel.Requests);
        }
    }

    [Fact]
    public async Task A_400_is_that_samples_error_and_the_others_come_back_in_order()
    {
        using var server = new StubChatServer((_, body, ctx) =>
        {
            return body.Contains("too long") ? StubChatServer.Reply(ctx, 400, "{\"error\": {\"message\": \"context length exceeded\"}}")
                : StubChatServer.Reply(ctx, 200, StubChatServer.Completion("ok:" + JsonDocument.Parse(body).RootElement.GetProperty("seed").GetInt64()));
        });
        using var teacher = new OpenAiTeacher(Config(server), seed: 1);
        var samples = await teacher.GenerateAsync([Request("a", 1), Request("too long", 2), Request("c", 3)], Sampling, CancellationToken.None);
        Assert.Equal(["ok:1", "", "ok:3"], samples.Select(s => s.Text));
        Assert.Contains("HTTP 400", samples[1].Error);
        Assert.Equal("error", samples[1].FinishReason);
        Assert.Equal(0, teacher.Retries);
    }

    [Fact]
    public async Task At_most_max_concurrency_requests_are_in_flight()
    {
        using var server = new StubChatServer(async (_, _, ctx) =>
        {
            await Task.Delay(150);
            await StubChatServer.Reply(ctx, 200, StubChatServer.Completion("x"));
        });
        using var teacher = new OpenAiTeacher(Config(server, concurrency: 2), seed: 1);
        var samples = await teacher.GenerateAsync(Enumerable.Range(0, 6).Select(i => Request($"q{i}", i)).ToList(), Sampling, CancellationToken.None);
        Assert.Equal(6, samples.Count);
        Assert.Equal(6, server.Requests);
        Assert.Equal(2, server.MaxInFlight);
    }

    [Fact]
    public async Task The_api_key_comes_from_the_named_environment_variable_and_reasoning_content_becomes_think()
    {
        using var server = new StubChatServer((_, _, ctx) => StubChatServer.Reply(ctx, 200,
            StubChatServer.Completion("The answer is \\boxed{4}.", reasoning: "2 and 2 make 4.")));
        const string env = "POSTTRAIN_TEST_TEACHER_KEY";
        Environment.SetEnvironmentVariable(env, "sk-test-123");
        try
        {
            using var teacher = new OpenAiTeacher(Config(server, keyEnv: env), seed: 1);
            var s = Assert.Single(await teacher.GenerateAsync([Request("q")], Sampling, CancellationToken.None));
            Assert.Equal("<think>\n2 and 2 make 4.\n</think>\n\nThe answer is \\boxed{4}.", s.Text);
            Assert.Equal("Bearer sk-test-123", server.Received[0].Authorization);
        }
        finally
        {
            Environment.SetEnvironmentVariable(env, null);
        }
        var e = Assert.Throws<RecipeConfigException>(() => new OpenAiTeacher(Config(server, keyEnv: env), seed: 1));
        Assert.Contains($"environment variable '{env}' is not set", e.Message);
    }
}
