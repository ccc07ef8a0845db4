// A tiny-moe server (built-in, random init with seed 0, CPU) on a free loopback port, shared by a test class, plus the
// same model loaded a second time and driven through the engine directly: the independent reference.
using System.ClientModel;
using System.Net.Http.Json;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using PostTrain.Core.Generation;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Recipes;

namespace PostTrain.Serve.Tests;

public class ServerFixture : IAsyncLifetime
{
    protected virtual double BatchWindowMs => 5;
    protected virtual string? MetricsDir => null;
    /// <summary>Seconds StartAsync took (model init included).</summary>
    public double StartSeconds { get; private set; }

    public PostTrainServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };
    public Reference Engine { get; } = new();

    public async Task InitializeAsync()
    {
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        Server = await PostTrainServer.StartAsync(new ServeOptions
        {
            Model = "tiny-moe", Port = 0, Device = "cpu", BatchWindowMs = BatchWindowMs, Log = TextWriter.Null, MetricsDir = MetricsDir,
        });
        StartSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    public virtual async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }

    public ChatClient Chat() => new(Server.ModelName, new ApiKeyCredential("unused"),
        new OpenAIClientOptions { Endpoint = Server.BaseUri, RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) });

    public Task<HttpResponseMessage> Post(string path, string json) =>
        Http.PostAsync(new Uri(Server.BaseUri, path), new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

    public async Task<JsonElement> PostOk(string path, object body)
    {
        using var r = await Http.PostAsJsonAsync(new Uri(Server.BaseUri, path), body);
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"{(int)r.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}

/// <summary>Runs the engine directly on tiny-moe (seed 0), as the server should.</summary>
public sealed class Reference
{
    private readonly TokenGenerator generator;
    public ITokenizer Tokenizer { get; }
    public ChatTemplate Template { get; }

    public Reference()
    {
        var loaded = ModelSetup.Load(new ModelConfigSection { Path = "tiny-moe", Device = "cpu", Dtype = DTypeName.Float32 }, 0, TextWriter.Null);
        loaded.Model.eval();
        generator = new TokenGenerator(loaded.Model);
        Tokenizer = loaded.Tokenizer;
        Template = ChatTemplate.DeepSeekV3(Tokenizer);
    }

    public int[] ChatPrompt(string user) => Template.RenderPrompt([PostTrain.Data.Examples.ChatMessage.User(user)]);

    public GenerationResult[] Generate(int[] prompt, int maxTokens, double temperature = 0, long seed = 0, int n = 1)
    {
        lock (generator)
            return [.. generator.Generate(Enumerable.Repeat(prompt, n).ToArray(),
                new SamplingParams(Temperature: temperature, MaxNewTokens: maxTokens, StopTokenIds: [Tokenizer.EosId], Seed: seed))];
    }

    /// <summary>What the server should return for a result: text without the end-of-sentence token, and the
    /// log-probs of the tokens that have text.</summary>
    public (string Text, float[] LogProbs) Expected(GenerationResult r)
    {
        var tokens = r.TokenIds.Where(t => t != Tokenizer.EosId).ToArray();
        return (Tokenizer.DecodeGenerated(tokens), r.LogProbs.Take(tokens.Length).ToArray());
    }
}

/// <summary>A long batching window, so that requests sent together are sure to share one engine call.</summary>
public sealed class BatchingFixture : ServerFixture
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("posttrain-serve-").FullName;
    protected override double BatchWindowMs => 1500;
    protected override string? MetricsDir => Dir;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(Dir, recursive: true);
    }
}
