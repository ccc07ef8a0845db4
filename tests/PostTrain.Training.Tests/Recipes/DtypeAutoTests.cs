// model.dtype: auto (the shipped recipes' setting): bfloat16 compute on CUDA, where the fast path captures the MoE step
// (fp32 grouped GEMMs cannot be captured), float32 on the CPU, where the recipes' published numbers were measured.
using PostTrain.Runtime;
using PostTrain.Training.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Recipes;

public sealed class DtypeAutoTests
{
    [Fact]
    public void Auto_is_bfloat16_on_cuda_and_float32_elsewhere()
    {
        Assert.Equal(DTypeName.Bfloat16, DTypeNames.Resolve(DTypeName.Auto, DeviceType.CUDA));
        Assert.Equal(DTypeName.Float32, DTypeNames.Resolve(DTypeName.Auto, DeviceType.CPU));
        foreach (var d in new[] { DTypeName.Float32, DTypeName.Bfloat16, DTypeName.Fp8 })
        foreach (var dev in new[] { DeviceType.CPU, DeviceType.CUDA })
            Assert.Equal(d, DTypeNames.Resolve(d, dev));
        Assert.Equal(DTypeName.Auto, DTypeNames.Parse("auto", "--dtype"));
        Assert.Equal("auto", DTypeNames.Name(DTypeName.Auto));
        Assert.Contains("auto", Assert.Throws<RecipeConfigException>(() => DTypeNames.Parse("fp16", "--dtype")).Message);
    }

    [Fact]
    public void A_recipe_binds_auto_and_the_model_computes_in_float32_on_the_cpu_saying_so()
    {
        var c = RecipeDocument.FromText("""
            recipe: sft
            output_dir: runs/sft
            model: {path: micro-moe, dtype: auto, device: cpu}
            data: {path: data/train.jsonl}
            """, "sft.yaml").Bind<SftConfig>();
        Assert.Equal(DTypeName.Auto, c.Model.Dtype);
        var log = new StringWriter();
        var loaded = ModelSetup.Load(c.Model, 0, log);
        using var model = loaded.Model;
        Assert.Equal(ScalarType.Float32, model.ComputeDtype);
        Assert.Contains("model.dtype: auto -> float32 (on cpu)", log.ToString());
        // on CUDA auto is bf16 compute, which the captured fast path takes (FastTrainStepTests: fp32 MoE steps are blocked)
        Assert.Equal(PostTrain.Core.Precision.Precision.Bf16, ModelSetup.PrecisionOn(DTypeName.Auto, new Device(DeviceType.CUDA, 0)).Precision);
        Assert.Null(ModelSetup.PrecisionOn(DTypeName.Float32, new Device(DeviceType.CUDA, 0)).Note);
    }

    [Theory]
    [InlineData("recipes/sft-quickstart.yaml")]
    [InlineData("recipes/grpo-arith.yaml")]
    [InlineData("recipes/grpo-countdown.yaml")]
    [InlineData("recipes/grpo-code.yaml")]
    [InlineData("recipes/rm.yaml")]
    [InlineData("recipes/sft-lora.yaml")]
    public void The_shipped_small_model_recipes_compute_in_auto(string recipe)
    {
        Assert.Matches(@"(?m)^  dtype: auto\b", File.ReadAllText(RepoPaths.Of(recipe)));
    }
}
