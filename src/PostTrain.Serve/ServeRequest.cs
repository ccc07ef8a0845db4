// Checks and reads the JSON body of /v1/chat/completions and /v1/completions into one request type. Every error names
// the field (OpenAI's `param`). Unknown fields are ignored (clients send many optional ones); fields whose non-default
// values would silently change the meaning (penalties, echo, top alternatives, tools) are rejected instead.
using System.Text.Json;
using PostTrain.Data.Examples;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Serve;

internal enum ApiKind { Chat, Completions }

internal sealed record ServeRequest
{
    public required ApiKind Kind { get; init; }
    /// <summary>Distinct prompts (chat: one; completions: one per prompt given), each non-empty.</summary>
    public required IReadOnlyList<int[]> Prompts { get; init; }
    public int N { get; init; } = 1;
    public double Temperature { get; init; } = 1;
    public double TopP { get; init; } = 1;
    /// <summary>Completion tokens at most per choice (resolved against max-model-len).</summary>
    public int MaxTokens { get; init; }
    public string[] Stop { get; init; } = [];
    public long? Seed { get; init; }
    public bool LogProbs { get; init; }
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
}

internal sealed class RequestParser(ITokenizer tokenizer, Func<IReadOnlyList<ChatMessage>, int[]> renderChat, string modelName,
    int maxModelLen, int maxN)
{
    /// <summary>Largest number of stop strings, as OpenAI allows.</summary>
    public const int MaxStops = 4;

    public ServeRequest Parse(ApiKind kind, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("the request body must be a JSON object");
        var model = String(root, "model") ?? throw ApiException.BadRequest("'model' is required", "model");
        if (model != modelName)
            throw new ApiException(404, $"The model '{model}' does not exist (this server serves '{modelName}')", "model", "model_not_found");

        IReadOnlyList<int[]> prompts = kind == ApiKind.Chat ? [renderChat(Messages(root))] : CompletionPrompts(root);
        string promptParam = kind == ApiKind.Chat ? "messages" : "prompt";
        int longest = prompts.Max(p => p.Length);
        if (longest >= maxModelLen)
            throw ApiException.BadRequest($"This model's maximum context length is {maxModelLen} tokens, but the prompt has {longest} tokens " +
                "(no room for a completion). Please reduce the length of the prompt.", promptParam, "context_length_exceeded");

        int n = Int(root, "n", 1, maxN) ?? 1;
        double temperature = Number(root, "temperature", 0, 2) ?? 1;
        double topP = Number(root, "top_p", 0, 1) ?? 1;
        if (topP == 0) throw ApiException.BadRequest("'top_p' must be > 0 (got 0)", "top_p");
        int? maxTokens = Int(root, "max_completion_tokens", 1, int.MaxValue) ?? Int(root, "max_tokens", 1, int.MaxValue);
        string maxParam = root.TryGetProperty("max_completion_tokens", out var mct) && mct.ValueKind != JsonValueKind.Null ? "max_completion_tokens" : "max_tokens";
        // Chat: no limit given = the rest of the context (as vLLM); legacy completions default to 16 tokens (as OpenAI).
        int resolved = maxTokens ?? (kind == ApiKind.Chat ? maxModelLen - longest : Math.Min(16, maxModelLen - longest));
        if (longest + resolved > maxModelLen)
            throw ApiException.BadRequest($"This model's maximum context length is {maxModelLen} tokens. However, you requested " +
                $"{longest + resolved} tokens ({longest} in the {promptParam}, {resolved} in the completion). Please reduce the length of " +
                $"the {promptParam} or '{maxParam}'.", maxParam, "context_length_exceeded");

        bool logprobs;
        if (kind == ApiKind.Chat)
        {
            logprobs = Bool(root, "logprobs") ?? false;
            int top = Int(root, "top_logprobs", 0, 20) ?? 0;
            if (top > 0)
                throw ApiException.BadRequest($"'top_logprobs' = {top} is not supported: PostTrain's engine returns only the sampled token's " +
                    "log-probability (use logprobs: true with top_logprobs 0 or unset)", "top_logprobs");
            if (root.TryGetProperty("top_logprobs", out var tl) && tl.ValueKind != JsonValueKind.Null && !logprobs)
                throw ApiException.BadRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs");
        }
        else
        {
            int? k = Int(root, "logprobs", 0, 5);
            if (k > 0)
                throw ApiException.BadRequest($"'logprobs' = {k} is not supported: PostTrain's engine returns only the sampled token's " +
                    "log-probability, not the top alternatives (use logprobs: 0 for tokens and token_logprobs)", "logprobs");
            logprobs = k is not null;
            if (Bool(root, "echo") == true) throw ApiException.BadRequest("'echo' is not supported", "echo");
            if (root.TryGetProperty("suffix", out var sfx) && sfx.ValueKind != JsonValueKind.Null) throw ApiException.BadRequest("'suffix' is not supported", "suffix");
            if (Int(root, "best_of", 1, maxN) is int bo && bo != n) throw ApiException.BadRequest("'best_of' other than n is not supported", "best_of");
        }
        foreach (var penalty in new[] { "presence_penalty", "frequency_penalty" })
            if (Number(root, penalty, -2, 2) is double v && v != 0) throw ApiException.BadRequest($"'{penalty}' is not supported (only 0)", penalty);
        if (root.TryGetProperty("logit_bias", out var lb) && lb.ValueKind == JsonValueKind.Object && lb.EnumerateObject().Any())
            throw ApiException.BadRequest("'logit_bias' is not supported", "logit_bias");
        if (root.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0)
            throw ApiException.BadRequest("'tools' are not supported", "tools");

        bool stream = Bool(root, "stream") ?? false;
        bool includeUsage = false;
        if (root.TryGetProperty("stream_options", out var so) && so.ValueKind != JsonValueKind.Null)
        {
            if (so.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("'stream_options' must be an object", "stream_options");
            if (!stream) throw ApiException.BadRequest("'stream_options' is only allowed when 'stream' is true", "stream_options");
            includeUsage = Bool(so, "include_usage", "stream_options.include_usage") ?? false;
        }
        return new ServeRequest
        {
            Kind = kind, Prompts = prompts, N = n, Temperature = temperature, TopP = topP, MaxTokens = resolved,
            Stop = Stops(root), Seed = Long(root, "seed"), LogProbs = logprobs, Stream = stream, IncludeUsage = includeUsage,
        };
    }

    private static List<ChatMessage> Messages(JsonElement root)
    {
        if (!root.TryGetProperty("messages", out var arr) || arr.ValueKind == JsonValueKind.Null) throw ApiException.BadRequest("'messages' is required", "messages");
        if (arr.ValueKind != JsonValueKind.Array || arr.GetArrayLength() == 0) throw ApiException.BadRequest("'messages' must be a non-empty array", "messages");
        var messages = new List<ChatMessage>();
        int i = 0;
        foreach (var m in arr.EnumerateArray())
        {
            string param = $"messages[{i}]";
            if (m.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest($"'{param}' must be an object", param);
            var roleName = String(m, "role", $"{param}.role") ?? throw ApiException.BadRequest($"'{param}.role' is required", $"{param}.role");
            ChatRole role = roleName switch
            {
                "system" or "developer" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                _ => throw ApiException.BadRequest($"'{param}.role' = '{roleName}' is not supported (system, developer, user, assistant)", $"{param}.role"),
            };
            messages.Add(new ChatMessage(role, Content(m, $"{param}.content", role == ChatRole.Assistant)));
            i++;
        }
        return messages;
    }

    /// <summary>A message's content: a string, or an array of text parts (other part types are rejected).</summary>
    private static string Content(JsonElement m, string param, bool mayBeNull)
    {
        if (!m.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null)
            return mayBeNull ? "" : throw ApiException.BadRequest($"'{param}' is required", param);
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw ApiException.BadRequest($"'{param}' must be a string or an array of text parts", param);
        var text = new System.Text.StringBuilder();
        int j = 0;
        foreach (var part in c.EnumerateArray())
        {
            string pp = $"{param}[{j++}]";
            if (part.ValueKind != JsonValueKind.Object || String(part, "type", $"{pp}.type") != "text")
                throw ApiException.BadRequest($"'{pp}' must be a text part {{\"type\": \"text\", \"text\": ...}} (only text is supported)", pp);
            text.Append(String(part, "text", $"{pp}.text") ?? throw ApiException.BadRequest($"'{pp}.text' is required", $"{pp}.text"));
        }
        return text.ToString();
    }

    /// <summary>prompt: a string, an array of strings, an array of token ids, or an array of such arrays.</summary>
    private List<int[]> CompletionPrompts(JsonElement root)
    {
        if (!root.TryGetProperty("prompt", out var p) || p.ValueKind == JsonValueKind.Null) throw ApiException.BadRequest("'prompt' is required", "prompt");
        var prompts = new List<int[]>();
        if (p.ValueKind == JsonValueKind.String) prompts.Add(tokenizer.Encode(p.GetString()!));
        else if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() > 0 && p[0].ValueKind == JsonValueKind.Number) prompts.Add(TokenIds(p, "prompt"));
        else if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() > 0)
        {
            int i = 0;
            foreach (var e in p.EnumerateArray())
            {
                string param = $"prompt[{i++}]";
                if (e.ValueKind == JsonValueKind.String) prompts.Add(tokenizer.Encode(e.GetString()!));
                else if (e.ValueKind == JsonValueKind.Array) prompts.Add(TokenIds(e, param));
                else throw ApiException.BadRequest($"'{param}' must be a string or an array of token ids", param);
            }
        }
        else throw ApiException.BadRequest("'prompt' must be a string, an array of strings, or an array of token ids (non-empty)", "prompt");
        for (int i = 0; i < prompts.Count; i++)
            if (prompts[i].Length == 0)
                throw ApiException.BadRequest(prompts.Count == 1 ? "'prompt' is empty" : $"'prompt[{i}]' is empty", prompts.Count == 1 ? "prompt" : $"prompt[{i}]");
        return prompts;
    }

    private int[] TokenIds(JsonElement arr, string param)
    {
        var ids = new int[arr.GetArrayLength()];
        int i = 0;
        foreach (var e in arr.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int id) || id < 0 || id >= tokenizer.VocabSize)
                throw ApiException.BadRequest($"'{param}[{i}]' must be a token id in [0, {tokenizer.VocabSize})", $"{param}[{i}]");
            ids[i++] = id;
        }
        return ids;
    }

    private static string[] Stops(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var s) || s.ValueKind == JsonValueKind.Null) return [];
        string[] stops = s.ValueKind switch
        {
            JsonValueKind.String => [s.GetString()!],
            JsonValueKind.Array => s.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.String ? e.GetString()!
                : throw ApiException.BadRequest($"'stop[{i}]' must be a string", $"stop[{i}]")).ToArray(),
            _ => throw ApiException.BadRequest("'stop' must be a string or an array of strings", "stop"),
        };
        if (stops.Length > MaxStops) throw ApiException.BadRequest($"'stop' has {stops.Length} sequences; at most {MaxStops} are allowed", "stop");
        for (int i = 0; i < stops.Length; i++)
            if (stops[i].Length == 0) throw ApiException.BadRequest("'stop' sequences must not be empty", "stop");
        return stops;
    }

    private static bool Present(JsonElement o, string name, out JsonElement v) =>
        o.TryGetProperty(name, out v) && v.ValueKind != JsonValueKind.Null;

    private static string? String(JsonElement o, string name, string? param = null)
    {
        if (!Present(o, name, out var v)) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw ApiException.BadRequest($"'{param ?? name}' must be a string", param ?? name);
    }

    private static bool? Bool(JsonElement o, string name, string? param = null)
    {
        if (!Present(o, name, out var v)) return null;
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
            : throw ApiException.BadRequest($"'{param ?? name}' must be a boolean", param ?? name);
    }

    private static double? Number(JsonElement o, string name, double min, double max)
    {
        if (!Present(o, name, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number) throw ApiException.BadRequest($"'{name}' must be a number", name);
        double d = v.GetDouble();
        if (d < min || d > max) throw ApiException.BadRequest($"'{name}' must be in [{min}, {max}] (got {d})", name);
        return d;
    }

    private static int? Int(JsonElement o, string name, int min, int max)
    {
        if (!Present(o, name, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x)) throw ApiException.BadRequest($"'{name}' must be an integer", name);
        if (x < min || x > max) throw ApiException.BadRequest($"'{name}' must be in [{min}, {max}] (got {x})", name);
        return (int)x;
    }

    private static long? Long(JsonElement o, string name)
    {
        if (!Present(o, name, out var v)) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x) ? x : throw ApiException.BadRequest($"'{name}' must be an integer", name);
    }
}
