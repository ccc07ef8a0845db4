// The OpenAI-compatible server: loads the model once, starts the batching scheduler (the only thread that touches the
// model) and a Kestrel host with POST /v1/chat/completions, POST /v1/completions and GET /v1/models. Requests are
// checked and tokenized on the HTTP side; generation events come back per token through the job's channel and are
// written as one JSON response or as server-sent events. Any failure becomes OpenAI's error JSON; nothing a client
// sends can stop the server.
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Serve;

public sealed class PostTrainServer : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly Scheduler scheduler;
    private int disposed;

    /// <summary>e.g. http://127.0.0.1:41234/v1/ (what an OpenAI client's endpoint is set to).</summary>
    public Uri BaseUri { get; }
    /// <summary>The model id /v1/models lists and requests must name.</summary>
    public string ModelName { get; }
    public int MaxModelLen { get; }
    public ITokenizer Tokenizer { get; }
    /// <summary>Batching counters (requests per engine call, tokens, aborted requests).</summary>
    public ServeStats Stats => scheduler.Stats;
    internal Scheduler Scheduler => scheduler;

    private PostTrainServer(WebApplication app, Scheduler scheduler, Uri baseUri, string modelName, int maxModelLen, ITokenizer tokenizer)
    {
        (this.app, this.scheduler, BaseUri, ModelName, MaxModelLen, Tokenizer) = (app, scheduler, baseUri, modelName, maxModelLen, tokenizer);
    }

    public static async Task<PostTrainServer> StartAsync(ServeOptions options, CancellationToken ct = default)
    {
        Validate(options);
        var log = options.Log ?? Console.Error;
        var address = ParseHost(options.Host);
        if (!Directory.Exists(options.Model) && !BuiltinModels.ByName.ContainsKey(options.Model))
            throw new ArgumentException($"ServeOptions.Model: '{options.Model}' is neither a directory nor a built-in model " +
                $"({string.Join(", ", BuiltinModels.ByName.Keys)})");
        Template(options, ByteTokenizer.Instance);   // fail on a bad template name before loading anything
        var loaded = await Task.Run(() => ModelSetup.Load(new ModelConfigSection
        {
            Path = options.Model, Device = options.Device, Dtype = options.Dtype, Tokenizer = options.Tokenizer,
        }, options.Seed, log), ct);
        loaded.Model.eval();
        var tokenizer = loaded.Tokenizer;
        var template = Template(options, tokenizer);
        int maxModelLen = options.MaxModelLen ?? loaded.Model.Config.MaxPositionEmbeddings;
        string name = options.ServedModelName ?? DefaultName(options.Model);
        var generator = new TokenGenerator(loaded.Model, new GenerationOptions { MaxBatchSize = options.MaxBatchSize });
        var metrics = options.MetricsDir is { } dir ? new MetricsLogger(dir, tensorboard: true) : null;
        var scheduler = new Scheduler(generator, tokenizer.EosId, options.MaxBatchSize, TimeSpan.FromMilliseconds(options.BatchWindowMs), log,
            metrics, options.StatusIntervalSeconds);
        var parser = new RequestParser(tokenizer, template.RenderPrompt, name, maxModelLen, options.MaxN);

        WebApplication? app = null;
        try
        {
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
            builder.Logging.ClearProviders();
            builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
            builder.WebHost.ConfigureKestrel(k => k.Listen(address, options.Port));
            app = builder.Build();
            var api = new Endpoints(parser, scheduler, tokenizer, name, maxModelLen);
            api.Map(app);
            await app.StartAsync(ct);
            var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            var baseUri = new Uri(bound.TrimEnd('/') + "/v1/");
            log.WriteLine($"serving '{name}' at {baseUri} (max model len {maxModelLen}, max batch {options.MaxBatchSize}, device {loaded.Device})");
            return new PostTrainServer(app, scheduler, baseUri, name, maxModelLen, tokenizer);
        }
        catch
        {
            if (app is not null) await app.DisposeAsync();
            scheduler.Dispose();
            throw;
        }
    }

    /// <summary>Completes when the host is asked to stop (Ctrl-C) or <paramref name="ct"/> is cancelled; then stops the host.</summary>
    public Task WaitForShutdownAsync(CancellationToken ct = default) => app.WaitForShutdownAsync(ct);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        scheduler.Dispose();   // fails queued requests with 503, so open responses finish before the host stops
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await app.StopAsync(timeout.Token);
        await app.DisposeAsync();
    }

    private static void Validate(ServeOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.Model)) throw new ArgumentException("ServeOptions.Model: a model directory or built-in name is required");
        if (o.Port is < 0 or > 65535) throw new ArgumentException($"ServeOptions.Port must be in [0, 65535] (got {o.Port})");
        if (o.MaxBatchSize < 1) throw new ArgumentException($"ServeOptions.MaxBatchSize must be >= 1 (got {o.MaxBatchSize})");
        if (double.IsNaN(o.BatchWindowMs) || o.BatchWindowMs < 0) throw new ArgumentException($"ServeOptions.BatchWindowMs must be >= 0 (got {o.BatchWindowMs})");
        if (o.MaxModelLen is < 2) throw new ArgumentException($"ServeOptions.MaxModelLen must be >= 2 (got {o.MaxModelLen})");
        if (double.IsNaN(o.StatusIntervalSeconds) || o.StatusIntervalSeconds < 0)
            throw new ArgumentException($"ServeOptions.StatusIntervalSeconds must be >= 0 (got {o.StatusIntervalSeconds})");
        if (o.MaxN < 1) throw new ArgumentException($"ServeOptions.MaxN must be >= 1 (got {o.MaxN})");
        if (o.ServedModelName is { } n && string.IsNullOrWhiteSpace(n)) throw new ArgumentException("ServeOptions.ServedModelName must not be blank");
    }

    private static IPAddress ParseHost(string host) =>
        host == "localhost" ? IPAddress.Loopback
        : IPAddress.TryParse(host, out var ip) ? ip
        : throw new ArgumentException($"ServeOptions.Host: '{host}' is not an IP address or 'localhost'");

    private static IChatTemplate Template(ServeOptions o, ITokenizer tokenizer) =>
        ChatTemplates.Resolve(o.ChatTemplate, tokenizer, o.Tokenizer ?? o.Model, "ServeOptions.ChatTemplate");

    private static string DefaultName(string model) =>
        BuiltinModels.ByName.ContainsKey(model) && !Directory.Exists(model) ? model
        : Path.GetFileName(Path.GetFullPath(model).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
}
