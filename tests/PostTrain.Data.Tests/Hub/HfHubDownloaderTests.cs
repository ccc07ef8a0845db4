// Downloading a hub model into the cache layout, against a local fake hub (no network): files land as blobs
// linked from snapshots/<commit>, refs/<rev> is written last, an interrupted file resumes with a Range request,
// the token is sent, a revision is pinned to its commit, and HfHubCache then resolves the id.
using PostTrain.Data.Hub;

namespace PostTrain.Data.Tests.Hub;

public sealed class HfHubDownloaderTests
{
    private const string Main = "1111111111111111111111111111111111111111", V1 = "2222222222222222222222222222222222222222";

    private static Dictionary<string, byte[]> Files()
    {
        var weights = new byte[200_000];
        new Random(7).NextBytes(weights);
        return new()
        {
            ["config.json"] = "{\"model_type\": \"deepseek_v3\"}"u8.ToArray(),
            ["model.safetensors"] = weights,
            ["sub/tokenizer_config.json"] = "{\"chat_template\": \"x\"}"u8.ToArray(),
        };
    }

    [Fact]
    public async Task Downloads_into_the_cache_layout_and_resumes_an_interrupted_file()
    {
        using var tmp = new TempDir();
        var files = Files();
        await using var hub = new FakeHubServer("org/m", new() { ["main"] = Main, ["v1"] = V1 }, files) { RequiredToken = "hf_secret", CutAfterBytes = 50_000 };
        using var http = new HttpClient();
        var progress = new StringWriter();
        var dl = new HfHubDownloader(http, tmp.Path, hub.Endpoint, "hf_secret", progress);
        HubId.TryParse("org/m", out var id);

        // the server cuts model.safetensors off after 50,000 bytes: the attempt fails, leaves the partial blob, no ref
        await Assert.ThrowsAnyAsync<Exception>(() => dl.DownloadAsync(id));
        var repo = Path.Combine(tmp.Path, "models--org--m");
        var partial = Path.Combine(repo, "blobs", FakeHubServer.Etag(files["model.safetensors"]) + ".incomplete");
        Assert.Equal(50_000, new FileInfo(partial).Length);
        Assert.False(File.Exists(Path.Combine(repo, "refs", "main")));
        var cache = new HfHubCache(k => k == "HF_HUB_CACHE" ? tmp.Path : null);
        Assert.Throws<DirectoryNotFoundException>(() => cache.Resolve("org/m"));

        hub.CutAfterBytes = null;
        var snapshot = await dl.DownloadAsync(id);
        Assert.Equal(Path.Combine(repo, "snapshots", Main), snapshot);
        Assert.Contains(hub.Log, r => r.Method == "GET" && r.Path.EndsWith("/model.safetensors") && r.Range == "bytes=50000-");
        Assert.All(hub.Log, r => Assert.Equal("Bearer hf_secret", r.Auth));
        foreach (var (name, data) in files)
        {
            var path = Path.Combine(snapshot, name);
            Assert.Equal(data, File.ReadAllBytes(path));
            Assert.NotNull(new FileInfo(path).LinkTarget);   // a link into blobs/, as huggingface_hub lays it out
        }
        Assert.False(File.Exists(partial));
        Assert.Equal(Main, File.ReadAllText(Path.Combine(repo, "refs", "main")));
        Assert.Equal(snapshot, cache.Resolve("org/m"));
        Assert.Contains("(resumed)", progress.ToString());

        // a pinned revision resolves to its own commit; files already in blobs/ are not fetched again
        int gets = hub.Log.Count(r => r.Method == "GET");
        HubId.TryParse("org/m@v1", out var v1);
        var pinned = await dl.DownloadAsync(v1);
        Assert.Equal(Path.Combine(repo, "snapshots", V1), pinned);
        Assert.Equal(V1, File.ReadAllText(Path.Combine(repo, "refs", "v1")));
        Assert.Equal(gets + 1, hub.Log.Count(r => r.Method == "GET"));   // only the revision info
        Assert.Equal(pinned, cache.Resolve("org/m@v1"));
    }

    [Fact]
    public async Task Missing_token_and_unknown_model_are_clear_errors()
    {
        using var tmp = new TempDir();
        await using var hub = new FakeHubServer("org/m", new() { ["main"] = Main }, Files()) { RequiredToken = "hf_secret" };
        using var http = new HttpClient();
        HubId.TryParse("org/m", out var id);
        var e = await Assert.ThrowsAsync<HttpRequestException>(() => new HfHubDownloader(http, tmp.Path, hub.Endpoint).DownloadAsync(id));
        Assert.Contains("HTTP 401", e.Message);
        Assert.Contains("set HF_TOKEN", e.Message);
        HubId.TryParse("org/other", out var other);
        e = await Assert.ThrowsAsync<HttpRequestException>(() => new HfHubDownloader(http, tmp.Path, hub.Endpoint, "hf_secret").DownloadAsync(other));
        Assert.Contains("no model org/other", e.Message);
    }
}
