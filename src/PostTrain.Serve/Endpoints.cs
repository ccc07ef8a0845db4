// The HTTP side: routes, request bodies to jobs, job events to OpenAI's JSON shapes (chat.completion,
// chat.completion.chunk, text_completion, list/model, error). Streams are server-sent events "data: {json}\n\n"
// ending with "data: [DONE]". Log-probs: the sampled token's only (the engine computes no alternatives), so
// top_logprobs are always empty; the end-of-sentence token that ends a choice is counted in usage but has no text
// and no log-prob entry.
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Serve;

internal sealed class Endpoints(RequestParser parser, Scheduler scheduler, ITokenizer tokenizer, string modelName, int maxModelLen)
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly long startedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", ctx => Generate(ctx, ApiKind.Chat));
        app.MapPost("/v1/completions", ctx => Generate(ctx, ApiKind.Completions));
        app.MapGet("/v1/models", ctx => WriteJson(ctx, 200, new { @object = "list", data = new[] { ModelCard() } }));
        app.MapGet("/v1/models/{id}", ctx => (string?)ctx.Request.RouteValues["id"] == modelName
            ? WriteJson(ctx, 200, ModelCard())
            : WriteError(ctx, new ApiException(404, $"The model '{ctx.Request.RouteValues["id"]}' does not exist", "model", "model_not_found")));
        app.MapGet("/health", ctx => ctx.Response.WriteAsync("ok"));
        app.MapFallback(ctx => WriteError(ctx, new ApiException(404, $"no route {ctx.Request.Method} {ctx.Request.Path}", code: "not_found")));
    }

    private static string BodyLimit(HttpContext ctx) =>
        ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize is { } limit
            ? limit.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + " bytes" : "its limit";

    private object ModelCard() => new { id = modelName, @object = "model", created = startedAt, owned_by = "posttrain", max_model_len = maxModelLen };

    private async Task Generate(HttpContext ctx, ApiKind kind)
    {
        Job job;
        try
        {
            JsonDocument doc;
            try { doc = await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted); }
            catch (JsonException e) { throw ApiException.BadRequest($"the request body is not valid JSON: {e.Message}"); }
            // Kestrel stops reading a body over its limit (MaxRequestBodySize, 30 MB) with 413; other framing errors are 400.
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                throw new ApiException(413, $"the request body is larger than the server accepts ({BodyLimit(ctx)})");
            }
            catch (BadHttpRequestException e) { throw new ApiException(e.StatusCode, $"bad request body: {e.Message}"); }
            using (doc) job = new Job(parser.Parse(kind, doc.RootElement), tokenizer, ctx.RequestAborted);
            scheduler.Submit(job);
        }
        catch (ApiException e) { await WriteError(ctx, e); return; }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { return; }
        catch (Exception e) { await WriteError(ctx, new ApiException(500, $"internal error: {e.Message}", type: "server_error")); return; }

        try
        {
            if (job.Request.Stream) await Stream(ctx, job, kind);
            else await Whole(ctx, job, kind);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { }   // the client went away
        catch (IOException) when (ctx.RequestAborted.IsCancellationRequested) { }
    }

    private async Task Whole(HttpContext ctx, Job job, ApiKind kind)
    {
        int rows = job.Rows;
        var texts = Enumerable.Range(0, rows).Select(_ => new StringBuilder()).ToArray();
        var tokens = Enumerable.Range(0, rows).Select(_ => new List<TokenLogProb>()).ToArray();
        var finish = new string?[rows];
        DoneEvent? done = null;
        await foreach (var ev in job.Events.Reader.ReadAllAsync(ctx.RequestAborted))
            switch (ev)
            {
                case ChoiceEvent c:
                    texts[c.Choice].Append(c.Text);
                    if (c.Token is { } t) tokens[c.Choice].Add(t);
                    finish[c.Choice] ??= c.Finish;
                    break;
                case DoneEvent d: done = d; break;
                case FailedEvent f: await WriteError(ctx, f.Error); return;
            }
        if (done is null) return;   // dropped (client gone)
        var usage = Usage(done);
        string id = NewId(kind);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        object response = kind == ApiKind.Chat
            ? new
            {
                id, @object = "chat.completion", created, model = modelName,
                choices = Enumerable.Range(0, rows).Select(i => new
                {
                    index = i,
                    message = new { role = "assistant", content = texts[i].ToString(), refusal = (string?)null },
                    logprobs = job.Request.LogProbs ? ChatLogProbs(tokens[i]) : null,
                    finish_reason = finish[i],
                }).ToArray(),
                usage,
            }
            : new
            {
                id, @object = "text_completion", created, model = modelName,
                choices = Enumerable.Range(0, rows).Select(i => new
                {
                    index = i, text = texts[i].ToString(),
                    logprobs = job.Request.LogProbs ? CompletionLogProbs(tokens[i], 0) : null,
                    finish_reason = finish[i],
                }).ToArray(),
                usage,
            };
        await WriteJson(ctx, 200, response);
    }

    private async Task Stream(HttpContext ctx, Job job, ApiKind kind)
    {
        var ct = ctx.RequestAborted;
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        string id = NewId(kind);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        bool chat = kind == ApiKind.Chat, usageOn = job.Request.IncludeUsage;
        var offsets = new int[job.Rows];   // completions: text_offset of the next token per choice

        Dictionary<string, object?> Chunk(object[] choices)
        {
            var chunk = new Dictionary<string, object?>
            {
                ["id"] = id, ["object"] = chat ? "chat.completion.chunk" : "text_completion", ["created"] = created,
                ["model"] = modelName, ["choices"] = choices,
            };
            if (usageOn) chunk["usage"] = null;
            return chunk;
        }
        object Choice(int index, string? text, TokenLogProb? token, string? finish, bool role = false)
        {
            object? lp = null;
            if (job.Request.LogProbs && token is { } t)
            {
                lp = chat ? ChatLogProbs([t]) : CompletionLogProbs([t], offsets[index]);
                offsets[index] += TokenText(t.Token).Length;
            }
            if (!chat) return new { index, text = text ?? "", logprobs = lp, finish_reason = finish };
            object delta = role ? new { role = "assistant", content = "" } : text is null ? new { } : new { content = text };
            return new { index, delta, logprobs = lp, finish_reason = finish };
        }

        if (chat)
            for (int i = 0; i < job.Rows; i++) await Send(ctx, Chunk([Choice(i, null, null, null, role: true)]), ct);
        await foreach (var ev in job.Events.Reader.ReadAllAsync(ct))
            switch (ev)
            {
                case ChoiceEvent c:
                    if (c.Text.Length > 0 || (c.Token is not null && job.Request.LogProbs))
                        await Send(ctx, Chunk([Choice(c.Choice, c.Text, c.Token, null)]), ct);
                    if (c.Finish is not null) await Send(ctx, Chunk([Choice(c.Choice, null, null, c.Finish)]), ct);
                    break;
                case DoneEvent d:
                    if (usageOn)
                    {
                        var last = Chunk([]);
                        last["usage"] = Usage(d);
                        await Send(ctx, last, ct);
                    }
                    await ctx.Response.WriteAsync("data: [DONE]\n\n", ct);
                    return;
                case FailedEvent f:
                    await ctx.Response.WriteAsync($"data: {f.Error.ToJson()}\n\n", ct);
                    await ctx.Response.WriteAsync("data: [DONE]\n\n", ct);
                    return;
            }
    }

    private static async Task Send(HttpContext ctx, object chunk, CancellationToken ct)
    {
        await ctx.Response.WriteAsync($"data: {JsonSerializer.Serialize(chunk, Json)}\n\n", ct);
        await ctx.Response.Body.FlushAsync(ct);
    }

    private static object Usage(DoneEvent d) =>
        new { prompt_tokens = d.PromptTokens, completion_tokens = d.CompletionTokens, total_tokens = d.PromptTokens + d.CompletionTokens };

    private object ChatLogProbs(IEnumerable<TokenLogProb> tokens) => new
    {
        content = tokens.Select(t => new { token = TokenText(t.Token), logprob = t.LogProb, bytes = TokenBytes(t.Token), top_logprobs = Array.Empty<object>() }).ToArray(),
        refusal = (object?)null,
    };

    private object CompletionLogProbs(IReadOnlyList<TokenLogProb> tokens, int offset)
    {
        var texts = tokens.Select(t => TokenText(t.Token)).ToArray();
        var offsets = new int[texts.Length];
        for (int i = 0; i < texts.Length; i++) { offsets[i] = offset; offset += texts[i].Length; }
        return new { tokens = texts, token_logprobs = tokens.Select(t => t.LogProb).ToArray(), top_logprobs = (object?)null, text_offset = offsets };
    }

    private string TokenText(int id) => tokenizer.DecodeGenerated([id]);

    /// <summary>The token's bytes: the byte itself for the byte tokenizer's byte ids, else the UTF-8 of its text.</summary>
    private int[] TokenBytes(int id) =>
        tokenizer is ByteTokenizer && id < ByteTokenizer.FirstSpecialId ? [id] : Encoding.UTF8.GetBytes(TokenText(id)).Select(b => (int)b).ToArray();

    private static string NewId(ApiKind kind) => (kind == ApiKind.Chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");

    private static Task WriteJson(HttpContext ctx, int status, object body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(JsonSerializer.Serialize(body, Json));
    }

    private static Task WriteError(HttpContext ctx, ApiException e)
    {
        if (ctx.Response.HasStarted) return Task.CompletedTask;
        ctx.Response.StatusCode = e.Status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(e.ToJson());
    }
}
