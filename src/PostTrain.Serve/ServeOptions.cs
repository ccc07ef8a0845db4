// What `posttrain serve` is started with: the model, where to listen, and how requests are batched.
namespace PostTrain.Serve;

public sealed record ServeOptions
{
    /// <summary>A Hugging Face-style model directory or a built-in model name (tiny-moe, ...: random init from <see cref="Seed"/>).</summary>
    public required string Model { get; init; }

    /// <summary>An IP address or "localhost". Loopback by default: the server has no authentication.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>0 = pick a free port (see <see cref="PostTrainServer.BaseUri"/>).</summary>
    public int Port { get; init; } = 8000;

    /// <summary>auto | cpu | cuda | cuda:N.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>float32 | bfloat16 | fp8 (compute precision of the linear layers).</summary>
    public DTypeName Dtype { get; init; } = DTypeName.Float32;

    /// <summary>The id clients send as `model` and /v1/models lists; null = the model directory's name or the built-in name.</summary>
    public string? ServedModelName { get; init; }

    /// <summary>Most sequences (completions) in one engine call; a single larger request still runs (the engine chunks it).</summary>
    public int MaxBatchSize { get; init; } = 64;

    /// <summary>After the first queued request, wait this long for more to batch with it.</summary>
    public double BatchWindowMs { get; init; } = 10;

    /// <summary>Chat template for /v1/chat/completions: auto | model | model:NAME | deepseek_v3 | plain | a .jinja file.</summary>
    public string ChatTemplate { get; init; } = "auto";

    /// <summary>Prompt + completion tokens at most; null = the model's max_position_embeddings.</summary>
    public int? MaxModelLen { get; init; }

    /// <summary>Tokenizer directory; null = the model directory's tokenizer.json, else the byte tokenizer.</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Seed of a built-in model's random init.</summary>
    public long Seed { get; init; }

    /// <summary>Largest `n` a request may ask for.</summary>
    public int MaxN { get; init; } = 64;

    /// <summary>When set, one metrics line per engine call (requests, rows, tokens, seconds, tokens/s, queue wait) goes to
    /// &lt;dir&gt;/metrics.jsonl and TensorBoard events (&lt;dir&gt;/tensorboard).</summary>
    public string? MetricsDir { get; init; }

    /// <summary>Seconds between "served ..." status lines on <see cref="Log"/> while requests come in; 0 = none.</summary>
    public double StatusIntervalSeconds { get; init; } = 30;

    /// <summary>Where startup, status lines and per-batch failures are logged; null = standard error.</summary>
    public TextWriter? Log { get; init; }
}
