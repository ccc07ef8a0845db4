using System.Text.Json;
using PostTrain.Rewards.Builtins;

namespace PostTrain.Rewards.Tests;

public sealed class RewardRegistryTests
{
    private static Dictionary<string, object?> Options(params (string Key, object? Value)[] values) => values.ToDictionary(v => v.Key, v => v.Value);

    [Fact]
    public void CreatesBuiltinsWithWeightsAndOptions()
    {
        var rewards = new RewardRegistry().CreateAll([
            new RewardSpec("format", 0.2, Options(("think_open", "<r>"), ("think_close", "</r>"))),
            new RewardSpec("repetition", 1.0, Options(("ngram", "2"), ("max_penalty", "-0.5"))), // YAML gives strings
        ]);
        Assert.Equal((0.2, 1.0), (rewards[0].Weight, rewards[1].Weight));
        Assert.Equal(1.0, Sample.Score(rewards[0].Reward, "<r>x</r>4"));
        Assert.Equal(-0.3, Sample.Score(rewards[1].Reward, "a b a b a b")!.Value, 12);
    }

    [Fact]
    public void ListOptionsFromYamlAndJson()
    {
        var yaml = new RewardRegistry().Create("tag_count", Options(("tags", new List<object> { "<a>", "</a>" })));
        Assert.Equal(0.5, Sample.Score(yaml, "<a>x"));
        using var doc = JsonDocument.Parse("""["<a>", "</a>", "<b>", "</b>"]""");
        var json = new RewardRegistry().Create("tag_count", Options(("tags", doc.RootElement.Clone())));
        Assert.Equal(0.75, Sample.Score(json, "<a>x</a><b>"));
        var bad = Assert.Throws<RewardConfigException>(() => new RewardRegistry().Create("tag_count", Options(("tags", "<a>"))));
        Assert.Contains("option 'tags' must be a list of strings", bad.Message);
    }

    [Fact]
    public void JsonOptionsAreRead()
    {
        using var doc = JsonDocument.Parse("""{"max_length": 100, "cache_length": 20, "unit": "chars"}""");
        var options = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        var reward = new RewardRegistry().Create("length", options);
        Assert.Equal(-0.5, Sample.Score(reward, new string('x', 90)));
    }

    [Fact]
    public void UnknownNameSuggestsTheClosest()
    {
        var e = Assert.Throws<RewardConfigException>(() => new RewardRegistry(Repo.RewardsDir).Create("fromat"));
        Assert.Contains("unknown reward 'fromat'; did you mean 'format'?", e.Message);
        var p = Assert.Throws<RewardConfigException>(() => new RewardRegistry(Repo.RewardsDir).Create("r1_fromat"));
        Assert.Contains("did you mean 'r1_format'?", p.Message);
    }

    [Fact]
    public void UnknownOrBadOptionsAreErrors()
    {
        var typo = Assert.Throws<RewardConfigException>(() => new RewardRegistry().Create("format", Options(("think_opn", "<t>"))));
        Assert.Contains("unknown option 'think_opn'; did you mean 'think_open'?", typo.Message);
        var bad = Assert.Throws<RewardConfigException>(() => new RewardRegistry().Create("length", Options(("max_length", "lots"))));
        Assert.Contains("option 'max_length' must be a number", bad.Message);
        var frac = Assert.Throws<RewardConfigException>(() => new RewardRegistry().Create("repetition", Options(("ngram", 2.5))));
        Assert.Contains("must be an integer", frac.Message);
    }

    [Fact]
    public void FindsPluginsAndListsEverything()
    {
        var list = new RewardRegistry(Repo.RewardsDir).List();
        Assert.Equal(["format", "tag_count", "length", "repetition", "language", "contains", "regex", "math", "code", "countdown"],
            list.Where(r => r.Kind == "builtin").Select(r => r.Name));
        var plugins = list.Where(r => r.Kind != "builtin").ToDictionary(r => r.Name);
        Assert.Equal("js", plugins["r1_format"].Kind);
        Assert.Equal("csx", plugins["boxed_math"].Kind);
        Assert.StartsWith("R1 format reward", plugins["r1_format"].Description);
        Assert.Equal(FormatReward.Description, list.Single(r => r.Name == "format").Description);
    }

    [Fact]
    public void PluginNameClashesAreErrors()
    {
        using var dir = new TempDir();
        dir.Write("format.js", "function reward(s) { return 1; }");
        Assert.Contains("name of a built-in", Assert.Throws<RewardConfigException>(() => new RewardRegistry(dir.Path)).Message);
        using var dir2 = new TempDir();
        dir2.Write("x.js", "function reward(s) { return 1; }");
        dir2.Write("x.csx", "s => 1.0");
        Assert.Contains("also used by", Assert.Throws<RewardConfigException>(() => new RewardRegistry(dir2.Path)).Message);
    }

    [Fact]
    public void CreatesPluginsByPathWithOptions()
    {
        using var dir = new TempDir();
        var path = dir.Write("scaled.js", "// scaled\nfunction reward(s, o) { return o.scale * s.completion.length; }");
        var reward = new RewardRegistry().Create(path, Options(("scale", 0.5)));
        Assert.Equal("scaled", reward.Name);
        Assert.Equal(2.0, Sample.Score(reward, "abcd"));
        Assert.Contains("not found", Assert.Throws<RewardConfigException>(() => new RewardRegistry().Create(Path.Combine(dir.Path, "none.js"))).Message);
    }

    [Fact]
    public void RegisterAddsARewardWithOptionChecking()
    {
        var registry = new RewardRegistry();
        registry.Register("constant", "a constant score", o => new RegexReward(o.String("pattern", ".")));
        Assert.Equal(1.0, Sample.Score(registry.Create("constant"), "x"));
        Assert.Throws<ArgumentException>(() => registry.Register("format", "again", FormatReward.FromOptions));
    }
}
