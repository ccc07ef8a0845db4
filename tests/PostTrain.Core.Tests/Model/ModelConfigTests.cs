using System.Text.Json.Nodes;
using PostTrain.Core.Model;

namespace PostTrain.Core.Tests.Model;

public sealed class ModelConfigTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "parity", name);

    [Fact]
    public void ReadsTransformersConfigWithQLoraAndGroups()
    {
        var c = ModelConfig.Load(Fixture("qlora_grouped"));
        Assert.Equal(32, c.QLoraRank);
        Assert.Equal((4, 2, true, 2.5), (c.NGroup, c.TopkGroup, c.NormTopkProb, c.RoutedScalingFactor));
        Assert.Equal(1, c.FirstKDenseReplace);
        Assert.Null(c.Yarn);
        Assert.Equal(24, c.QkHeadDim);
    }

    [Fact]
    public void ReadsYarnFromRopeParameters()
    {
        var c = ModelConfig.Load(Fixture("noqlora_yarn"));
        Assert.Null(c.QLoraRank);
        Assert.NotNull(c.Yarn);
        Assert.Equal(4.0, c.Yarn!.Factor);
        Assert.Equal(64, c.Yarn.OriginalMaxPositionEmbeddings);
        Assert.True(c.TieWordEmbeddings);
        Assert.False(c.NormTopkProb);
    }

    static JsonObject Base() => BuiltinModels.Micro().ToJson();

    [Fact]
    public void RoundTripsThroughJson()
    {
        var c = BuiltinModels.TinyMoe();
        var back = ModelConfig.FromJson(c.ToJson(), "mem");
        Assert.Equal(c, back);
    }

    [Fact]
    public void FloatFieldsAreWrittenAsFloats()
    {
        // transformers 5 validates config types strictly: routed_scaling_factor 1 (an int) is rejected.
        var json = (BuiltinModels.Micro() with { RoutedScalingFactor = 1.0, Yarn = new YarnScaling(4, 64) }).ToJsonString();
        Assert.Contains("\"routed_scaling_factor\": 1.0", json);
        Assert.Contains("\"rope_theta\": 10000.0", json);
        Assert.Contains("\"factor\": 4.0", json);
        Assert.Contains("\"rms_norm_eps\": 1E-06", json);
    }

    [Fact]
    public void OldStyleRopeScalingIsRead()
    {
        var o = Base();
        o.Remove("rope_parameters");
        o["rope_theta"] = 50000.0;
        o["rope_scaling"] = new JsonObject { ["type"] = "yarn", ["factor"] = 40.0, ["original_max_position_embeddings"] = 4096, ["mscale"] = 1.0, ["mscale_all_dim"] = 1.0 };
        var c = ModelConfig.FromJson(o, "old.json");
        Assert.Equal(50000, c.RopeTheta);
        Assert.Equal(40, c.Yarn!.Factor);
    }

    [Theory]
    [InlineData("model_type", "\"llama\"", "'model_type' 'llama' is not supported")]
    [InlineData("n_group", "3", "'n_group' n_routed_experts (4) must divide into n_group (3) equal groups")]
    [InlineData("topk_group", "5", "'topk_group' must be in 1..n_group (2), got 5")]
    [InlineData("hidden_size", "\"big\"", "'hidden_size' expected a number, got \"big\"")]
    [InlineData("qk_rope_head_dim", "7", "'qk_rope_head_dim' must be a positive even number (got 7)")]
    [InlineData("num_key_value_heads", "2", "'num_key_value_heads' 2 != num_attention_heads 4")]
    [InlineData("num_experts_per_tok", "9", "'num_experts_per_tok' must be in 1..n_routed_experts (4), got 9")]
    public void BadConfigsNameTheFileAndKey(string key, string json, string expected)
    {
        var o = Base();
        o[key] = JsonNode.Parse(json);
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.FromJson(o, "my/config.json"));
        Assert.StartsWith("my/config.json: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void MissingRequiredKeyIsNamed()
    {
        var o = Base();
        o.Remove("kv_lora_rank");
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.FromJson(o, "c.json"));
        Assert.Equal("c.json: 'kv_lora_rank' missing", e.Message);
    }

    [Fact]
    public void MissingFileAndBadJsonAreClear()
    {
        Assert.Contains("file not found", Assert.Throws<ModelConfigException>(() => ModelConfig.Load("/nonexistent/config.json")).Message);
        string p = Path.GetTempFileName();
        File.WriteAllText(p, "{\n\"model_type\": ");
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Load(p));
        Assert.Contains(p, e.Message);
        Assert.Contains("invalid JSON", e.Message);
    }
}
