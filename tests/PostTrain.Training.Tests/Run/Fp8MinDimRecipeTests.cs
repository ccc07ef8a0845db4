// model.fp8_min_dim in a recipe: bound from YAML, applied by ModelSetup (the log names how many layers run in FP8),
// and refused with the key named where it cannot apply (negative, or a model that does not compute in fp8).
using PostTrain.Runtime;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Tests.Run;

public sealed class Fp8MinDimRecipeTests
{
    private static ModelConfigSection Model(string dtype, int minDim) => RecipeDocument.FromText($"""
        recipe: sft
        output_dir: /tmp/unused
        model: {"{"} path: micro-moe, dtype: {dtype}, fp8_min_dim: {minDim}, device: cpu {"}"}
        data: {"{"} path: {RepoPaths.Of("datasets/arithmetic/test.parquet")} {"}"}
        """, "fp8.yaml", []).Bind<SftConfig>().Model;

    [Fact]
    public void The_key_reaches_the_model_and_the_log_counts_the_fp8_layers()
    {
        var section = Model("fp8", 64);
        Assert.Equal(64, section.Fp8MinDim);
        var log = new StringWriter();
        var loaded = ModelSetup.Load(section, 0, log);
        var (fp8, other) = loaded.Model.Fp8Layers();
        Assert.Equal(64, loaded.Model.Fp8MinDim);
        Assert.True(fp8 > 0 && other > 0, $"micro-moe at 64: some layers in FP8 (o_proj, the dense MLP), some not; got {fp8}, {other}");
        Assert.Contains($"model.fp8_min_dim: 64: {fp8} of {fp8 + other} linear layers and expert sets in FP8, {other} narrower in bfloat16", log.ToString());
    }

    [Theory]
    [InlineData("bfloat16", 128, "applies to model.dtype fp8 only; model.dtype is bfloat16")]
    [InlineData("auto", 128, "applies to model.dtype fp8 only; model.dtype is float32")]   // auto on the CPU
    [InlineData("fp8", -1, "must be 0 (every layer) or a width, got -1")]
    public void Refused_where_it_cannot_apply(string dtype, int minDim, string why)
    {
        var e = Assert.Throws<RecipeConfigException>(() => ModelSetup.Load(Model(dtype, minDim), 0, TextWriter.Null));
        Assert.Equal($"model.fp8_min_dim: {why}", e.Message);
    }
}
