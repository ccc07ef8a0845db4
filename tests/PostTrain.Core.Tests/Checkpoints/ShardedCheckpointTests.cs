// Sharded directories: HF's greedy split, shard names, the exact index.json text, config.json,
// single-shard output and replacement of a previous directory.
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class ShardedCheckpointTests
{
    // Byte sizes: lm_head 64, embed 64, layers.{0,1,10} 16 each (f32 x4), layers.2 16 (bf16 x8), norm 8 -> total 200.
    private static Dictionary<string, Tensor> StateDict() => new()
    {
        ["model.norm.weight"] = torch.tensor(new[] { 1f, 2f }),
        ["model.layers.10.w"] = torch.full(4, 10f),
        ["model.layers.2.w"] = torch.full(8, 2f).to(ScalarType.BFloat16),
        ["model.layers.1.w"] = torch.full(4, 1f),
        ["model.layers.0.w"] = torch.full(4, 0f),
        ["model.embed_tokens.weight"] = torch.arange(16, dtype: ScalarType.Float32).reshape(4, 4),
        ["lm_head.weight"] = torch.arange(16, dtype: ScalarType.Float32).reshape(4, 4).neg(),
    };

    // Natural order: lm_head (64 > 40: own shard), embed (own shard), layers.0 + layers.1 (32; + layers.2 would be 48),
    // layers.2 + layers.10 + norm (40, not over the limit).
    private const string ExpectedIndex = """
        {
          "metadata": {
            "total_size": 200
          },
          "weight_map": {
            "lm_head.weight": "model-00001-of-00004.safetensors",
            "model.embed_tokens.weight": "model-00002-of-00004.safetensors",
            "model.layers.0.w": "model-00003-of-00004.safetensors",
            "model.layers.1.w": "model-00003-of-00004.safetensors",
            "model.layers.10.w": "model-00004-of-00004.safetensors",
            "model.layers.2.w": "model-00004-of-00004.safetensors",
            "model.norm.weight": "model-00004-of-00004.safetensors"
          }
        }

        """;

    [Fact]
    public void ShardedRoundTripWritesHfIndexAndShards()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "ckpt");
        var state = StateDict();
        SafeTensors.SaveSharded(ckpt, state, "40");

        Assert.Equal(ExpectedIndex.ReplaceLineEndings("\n"), File.ReadAllText(Path.Combine(ckpt, "model.safetensors.index.json")));
        Assert.Equal(
            ["ckpt", "ckpt/model-00001-of-00004.safetensors", "ckpt/model-00002-of-00004.safetensors", "ckpt/model-00003-of-00004.safetensors",
             "ckpt/model-00004-of-00004.safetensors", "ckpt/model.safetensors.index.json"],
            dir.Entries());
        Assert.Equal(["model.layers.0.w", "model.layers.1.w"],
            SafeTensors.ReadHeader(Path.Combine(ckpt, "model-00003-of-00004.safetensors")).Keys.Order());

        var loaded = SafeTensors.Load(ckpt);
        Assert.Equal(state.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, t) in state)
        {
            Assert.Equal(t.dtype, loaded[name].dtype);
            Assert.Equal(TestTensors.Bytes(t), TestTensors.Bytes(loaded[name]));
        }
    }

    [Fact]
    public void EverythingInOneShardWritesModelSafetensorsWithoutIndex()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "ckpt");
        SafeTensors.SaveDirectory(ckpt, StateDict(), "{\"model_type\": \"deepseek_v3\"}");
        Assert.Equal(["ckpt", "ckpt/config.json", "ckpt/model.safetensors"], dir.Entries());
        Assert.Equal("{\"model_type\": \"deepseek_v3\"}", File.ReadAllText(Path.Combine(ckpt, "config.json")));
        Assert.Equal(7, SafeTensors.Load(ckpt).Count);
    }

    [Fact]
    public void SavingOverADirectoryReplacesItWithoutStaleShards()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "ckpt");
        SafeTensors.SaveSharded(ckpt, StateDict(), 40);
        Assert.Equal(4, Directory.GetFiles(ckpt, "*.safetensors").Length);

        var smaller = new Dictionary<string, Tensor> { ["only"] = torch.ones(3) };
        SafeTensors.SaveDirectory(ckpt, smaller, "{}", new CheckpointSaveOptions { ExtraFiles = new Dictionary<string, string> { ["generation_config.json"] = "{}" } });
        Assert.Equal(["ckpt", "ckpt/config.json", "ckpt/generation_config.json", "ckpt/model.safetensors"], dir.Entries());
        Assert.Equal(["only"], SafeTensors.Load(ckpt).Keys);
    }

    [Fact]
    public void ANonCheckpointDirectoryIsNeverReplaced()
    {
        using var dir = new TempDir();
        string precious = Path.Combine(dir.Path, "home");
        Directory.CreateDirectory(precious);
        File.WriteAllText(Path.Combine(precious, "notes.txt"), "keep me");
        var e = Assert.Throws<IOException>(() => SafeTensors.SaveDirectory(precious, StateDict(), null));
        Assert.Contains("refusing to replace", e.Message);
        Assert.Equal(["home", "home/notes.txt"], dir.Entries());
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(precious, "notes.txt")));
    }

    [Fact]
    public void InvalidConfigJsonIsRejectedBeforeAnythingIsWritten()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "ckpt");
        var e = Assert.Throws<ArgumentException>(() => SafeTensors.SaveDirectory(ckpt, StateDict(), "{\"a\": "));
        Assert.Contains("config.json", e.Message);
        Assert.Empty(dir.Entries());
    }

    [Theory]
    [InlineData("5GB", 5_000_000_000L)]
    [InlineData("5GiB", 5L << 30)]
    [InlineData("500MB", 500_000_000L)]
    [InlineData("2MiB", 2L << 20)]
    [InlineData("3KB", 3_000L)]
    [InlineData("8Gb", 1_000_000_000L)]
    [InlineData("1234", 1234L)]
    public void ShardSizesParseLikeTransformers(string text, long bytes) => Assert.Equal(bytes, ByteSize.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("GB")]
    [InlineData("-5GB")]
    [InlineData("five")]
    public void BadShardSizesAreRejected(string text) => Assert.Throws<FormatException>(() => ByteSize.Parse(text));

    [Fact]
    public void NaturalOrderPutsLayersInNumericOrder()
    {
        string[] names = ["l.10.a", "l.2.a", "l.1.b", "l.1.a", "l.02.a", "m"];
        Assert.Equal(["l.1.a", "l.1.b", "l.02.a", "l.2.a", "l.10.a", "m"], names.Order(NaturalComparer.Instance));
    }
}
