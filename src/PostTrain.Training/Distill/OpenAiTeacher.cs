// A teacher behind any OpenAI-compatible chat completions endpoint (vLLM, SGLang, a hosted API, `posttrain serve`),
// called with the official OpenAI .NET SDK. One request per sample (n = 1, a per-sample seed), at most
// max_concurrency in flight (a semaphore, held through a request's retries so a rate-limited server is not pushed
// harder), each with its own timeout. 429, 5xx, connection failures and timeouts are retried with exponential backoff
// and jitter (Backoff) up to max_retries; the SDK's own retries are off so the policy is this one. 400/413/422 are the
// one sample's problem (reported as an error sample); 401/403/404 mean the config is wrong and stop the run. Servers
// that return the reasoning separately (`reasoning_content`, e.g. DeepSeek's API, vLLM's reasoning parsers) get it
// put back as <think>...</think> before the answer.
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using PostTrain.Training.Recipes;
using DataChat = PostTrain.Data.Examples;

namespace PostTrain.Training.Distill;

/// <summary>A teacher request that failed for good: retries exhausted, or the endpoint rejected the configuration.</summary>
public sealed class TeacherException(string message, Exception? inner = null) : Exception(message, inner);

public sealed class OpenAiTeacher : ITeacher
{
    private readonly ChatClient _client;
    private readonly SemaphoreSlim _gate;
    private readonly TeacherConfig _cfg;
    private readonly Random _jitter;
    private long _retries;

    public string Name { get; }
    public long Retries => Interlocked.Read(ref _retries);

    public OpenAiTeacher(TeacherConfig cfg, long seed)
    {
        if (string.IsNullOrWhiteSpace(cfg.BaseUrl)) throw new RecipeConfigException("teacher.base_url: missing (e.g. http://127.0.0.1:8000/v1) for teacher.kind: openai");
        if (!Uri.TryCreate(cfg.BaseUrl, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new RecipeConfigException($"teacher.base_url: '{cfg.BaseUrl}' is not an http(s) URL");
        if (string.IsNullOrWhiteSpace(cfg.Model)) throw new RecipeConfigException("teacher.model: missing (the model name the endpoint serves)");
        if (cfg.MaxConcurrency < 1) throw new RecipeConfigException($"teacher.max_concurrency: must be >= 1, got {cfg.MaxConcurrency}");
        if (cfg.MaxRetries < 0) throw new RecipeConfigException($"teacher.max_retries: must be >= 0, got {cfg.MaxRetries}");
        if (!(cfg.TimeoutSeconds > 0)) throw new RecipeConfigException($"teacher.timeout_seconds: must be > 0, got {cfg.TimeoutSeconds}");
        if (!(cfg.InitialBackoffSeconds >= 0) || !(cfg.MaxBackoffSeconds >= cfg.InitialBackoffSeconds))
            throw new RecipeConfigException($"teacher.initial_backoff_seconds / max_backoff_seconds: need 0 <= initial <= max, got {cfg.InitialBackoffSeconds} / {cfg.MaxBackoffSeconds}");
        var options = new OpenAIClientOptions
        {
            Endpoint = endpoint,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            // our per-request timeout (a cancellation) decides; the transport's must not fire first
            NetworkTimeout = TimeSpan.FromSeconds(cfg.TimeoutSeconds + 30),
        };
        _client = new ChatClient(cfg.Model, new ApiKeyCredential(ApiKey(cfg.ApiKeyEnv)), options);
        _gate = new SemaphoreSlim(cfg.MaxConcurrency, cfg.MaxConcurrency);
        _cfg = cfg;
        _jitter = new Random(unchecked((int)seed));
        Name = $"openai:{cfg.Model}@{cfg.BaseUrl}";
    }

    /// <summary>The key from the environment variable the config names; servers without auth get a placeholder.</summary>
    private static string ApiKey(string? envName)
    {
        if (string.IsNullOrEmpty(envName)) return "none";
        var key = Environment.GetEnvironmentVariable(envName);
        if (string.IsNullOrEmpty(key)) throw new RecipeConfigException($"teacher.api_key_env: environment variable '{envName}' is not set (it must hold the API key)");
        return key;
    }

    /// <summary>Requests are independent (each carries its own seed): a share of a call is those requests alone.</summary>
    public Task<IReadOnlyList<TeacherSample>> GenerateAsync(IReadOnlyList<TeacherRequest> requests, int first, int count, DistillSamplingConfig s, CancellationToken ct) =>
        GenerateAsync(requests.Skip(first).Take(count).ToList(), s, ct);

    public async Task<IReadOnlyList<TeacherSample>> GenerateAsync(IReadOnlyList<TeacherRequest> requests, DistillSamplingConfig s, CancellationToken ct)
    {
        // the first request that fails for good cancels the others, and its error (not a sibling's cancellation) is thrown
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var tasks = requests.Select(r => OneAsync(r, s, stop)).ToArray();
        try
        {
            return await Task.WhenAll(tasks);
        }
        catch
        {
            ct.ThrowIfCancellationRequested();
            var first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException);
            if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            throw;
        }
    }

    private async Task<TeacherSample> OneAsync(TeacherRequest request, DistillSamplingConfig s, CancellationTokenSource stop)
    {
        var ct = stop.Token;
        await _gate.WaitAsync(ct);
        try
        {
            var messages = request.Messages.Select(ToOpenAi).ToList();
            var options = new ChatCompletionOptions
            {
                Temperature = (float)s.Temperature,
                TopP = (float)s.TopP,
                MaxOutputTokenCount = s.MaxTokens,
            };
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK; the chat completions API has it
            if (_cfg.SendSeed) options.Seed = request.Seed;
#pragma warning restore OPENAI001
            for (int attempt = 0; ; attempt++)
            {
                string why;
                double? retryAfter = null;
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(_cfg.TimeoutSeconds));
                try
                {
                    var result = await _client.CompleteChatAsync(messages, options, timeout.Token);
                    return ToSample(result);
                }
                catch (ClientResultException e) when (Backoff.IsRetryable(e.Status))
                {
                    why = e.Status == 0 ? $"no response ({e.Message})" : $"HTTP {e.Status}";
                    retryAfter = RetryAfterSeconds(e);
                }
                catch (ClientResultException e) when (e.Status is 400 or 413 or 422)
                {
                    return new TeacherSample("", 0, 0, "error", $"HTTP {e.Status}: {Shorten(e.Message)}");
                }
                catch (ClientResultException e)
                {
                    stop.Cancel();
                    throw new TeacherException($"teacher {Name}: HTTP {e.Status} (check teacher.base_url, teacher.model and the API key): {Shorten(e.Message)}", e);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    why = $"timed out after {_cfg.TimeoutSeconds:0.###} s";
                }
                catch (HttpRequestException e)
                {
                    why = $"connection failed ({e.Message})";
                }
                if (attempt >= _cfg.MaxRetries)
                {
                    stop.Cancel();
                    throw new TeacherException($"teacher {Name}: request failed after {attempt + 1} attempts: {why}");
                }
                Interlocked.Increment(ref _retries);
                double u;
                lock (_jitter) u = _jitter.NextDouble();
                await Task.Delay(Backoff.Delay(attempt, _cfg.InitialBackoffSeconds, _cfg.MaxBackoffSeconds, u, retryAfter), ct);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private static ChatMessage ToOpenAi(DataChat.ChatMessage m) => m.Role switch
    {
        DataChat.ChatRole.System => new SystemChatMessage(m.Content),
        DataChat.ChatRole.User => new UserChatMessage(m.Content),
        _ => new AssistantChatMessage(m.Content),
    };

    private static TeacherSample ToSample(ClientResult<ChatCompletion> result)
    {
        var c = result.Value;
        var text = string.Concat(c.Content.Where(p => p.Kind == ChatMessageContentPartKind.Text).Select(p => p.Text));
        if (ReasoningContent(result.GetRawResponse()) is { Length: > 0 } reasoning)
            text = $"<think>\n{reasoning.Trim()}\n</think>\n\n{text.TrimStart()}";
        string finish = c.FinishReason switch
        {
            ChatFinishReason.Stop => "stop",
            ChatFinishReason.Length => "length",
            ChatFinishReason.ContentFilter => "content_filter",
            ChatFinishReason.ToolCalls => "tool_calls",
            _ => c.FinishReason.ToString().ToLowerInvariant(),
        };
        return new TeacherSample(text, c.Usage?.InputTokenCount ?? 0, c.Usage?.OutputTokenCount ?? 0, finish);
    }

    /// <summary>choices[0].message.reasoning_content (or `reasoning`), which the SDK does not expose.</summary>
    private static string? ReasoningContent(PipelineResponse raw)
    {
        try
        {
            using var doc = JsonDocument.Parse(raw.Content);
            if (!doc.RootElement.TryGetProperty("choices", out var choices) || choices.GetArrayLength() == 0) return null;
            if (!choices[0].TryGetProperty("message", out var message)) return null;
            foreach (var key in new[] { "reasoning_content", "reasoning" })
                if (message.TryGetProperty(key, out var r) && r.ValueKind == JsonValueKind.String) return r.GetString();
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static double? RetryAfterSeconds(ClientResultException e) =>
        e.GetRawResponse() is { } r && r.Headers.TryGetValue("Retry-After", out var v)
        && double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : null;

    private static string Shorten(string s) => s.Length <= 300 ? s : s[..300] + "...";

    public void Dispose() => _gate.Dispose();
}
