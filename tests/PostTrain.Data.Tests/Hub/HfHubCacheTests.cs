// Hub ids org/name[@revision] found in a Hugging Face cache laid out as huggingface_hub writes it (refs/ and
// snapshots/), in the folders of HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME and ~/.cache; a miss lists where it looked.
using PostTrain.Data.Hub;

namespace PostTrain.Data.Tests.Hub;

public sealed class HfHubCacheTests
{
    private const string Commit = "0123456789abcdef0123456789abcdef01234567", Tagged = "fedcba9876543210fedcba9876543210fedcba98";

    private static string Snapshot(string root, string repo, string commit, params string[] refs)
    {
        var dir = Path.Combine(root, repo);
        var snap = Path.Combine(dir, "snapshots", commit);
        Directory.CreateDirectory(snap);
        File.WriteAllText(Path.Combine(snap, "config.json"), "{}");
        Directory.CreateDirectory(Path.Combine(dir, "refs"));
        foreach (var r in refs) File.WriteAllText(Path.Combine(dir, "refs", r), commit);
        return snap;
    }

    [Theory]
    [InlineData("deepseek-ai/DeepSeek-V3", "deepseek-ai", "DeepSeek-V3", null)]
    [InlineData("Qwen/Qwen3-0.6B@main", "Qwen", "Qwen3-0.6B", "main")]
    [InlineData("org/na.me_1@0123456789abcdef0123456789abcdef01234567", "org", "na.me_1", Commit)]
    public void Parses_hub_ids(string text, string org, string name, string? revision)
    {
        Assert.True(HubId.TryParse(text, out var id));
        Assert.Equal(new HubId(org, name, revision), id);
        Assert.Equal($"models--{org}--{name}", id.CacheFolder);
    }

    [Theory]
    [InlineData("/abs/dir")]
    [InlineData("./rel")]
    [InlineData("runs/rm/final")]
    [InlineData("micro-moe")]
    [InlineData("org/")]
    public void Paths_and_names_are_not_hub_ids(string text) => Assert.False(HubId.TryParse(text, out _));

    [Fact]
    public void Resolves_main_a_tag_and_a_commit_through_refs_and_snapshots()
    {
        using var tmp = new TempDir();
        var cache = new HfHubCache(k => k == "HF_HUB_CACHE" ? tmp.Path : null);
        var main = Snapshot(tmp.Path, "models--org--m", Commit, "main");
        var tagged = Snapshot(tmp.Path, "models--org--m", Tagged, "v1.0");
        Assert.Equal(main, cache.Resolve("org/m"));
        Assert.Equal(main, cache.Resolve("org/m@main"));
        Assert.Equal(tagged, cache.Resolve("org/m@v1.0"));
        Assert.Equal(tagged, cache.Resolve("org/m@" + Tagged));
        Assert.Equal(tmp.Path, cache.Resolve(tmp.Path));   // a directory stays itself
    }

    [Fact]
    public void Searches_the_cache_folders_in_order_and_lists_them_when_missing()
    {
        using var tmp = new TempDir();
        var env = new Dictionary<string, string?>
        {
            ["HF_HUB_CACHE"] = Path.Combine(tmp.Path, "a"), ["HF_HOME"] = Path.Combine(tmp.Path, "home"),
            ["XDG_CACHE_HOME"] = Path.Combine(tmp.Path, "xdg"), ["HOME"] = Path.Combine(tmp.Path, "user"),
        };
        var cache = new HfHubCache(k => env.GetValueOrDefault(k));
        Assert.Equal([Path.Combine(tmp.Path, "a"), Path.Combine(tmp.Path, "home", "hub"), Path.Combine(tmp.Path, "xdg", "huggingface", "hub"),
            Path.Combine(tmp.Path, "user", ".cache", "huggingface", "hub")], cache.Roots());
        var inHome = Snapshot(Path.Combine(tmp.Path, "home", "hub"), "models--org--m", Commit, "main");
        Assert.Equal(inHome, cache.Resolve("org/m"));

        var e = Assert.Throws<DirectoryNotFoundException>(() => cache.Resolve("org/absent@v2"));
        Assert.Contains("'org/absent@v2' is neither a directory nor a hub model", e.Message);
        foreach (var root in cache.Roots()) Assert.Contains(Path.Combine(root, "models--org--absent", "refs", "v2"), e.Message);
    }
}
