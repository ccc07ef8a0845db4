// bench-train --layers stacks the built-in model's layer shapes deeper (FP8's speedup is bounded by the share of the
// FLOPs outside the LM head; a deeper stack of bench-moe-large's layers is where the FP8 target can be tested): the row
// records the depth, the model has one more MoE layer's parameters per extra layer, and a depth without a MoE layer is
// a usage error naming the option.
// --fp8-min-dim is recorded in the row (with --dtype fp8) and refused otherwise.
using System.Text.Json;
using PostTrain.Core.Model;
using PostTrain.Training.Tests.Recipes;

namespace PostTrain.Training.Tests.Run;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class BenchTrainLayersTests
{
    private static Task<JsonElement> Row(params string[] extra) => RowIn("float32", extra);

    private static async Task<JsonElement> RowIn(string dtype, params string[] extra)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await PostTrain.Cli.CliApp.RunAsync(["bench-train", "--model", "micro-moe", "--device", "cpu", "--dtype", dtype,
            "--batch", "1", "--seq", "16", "--steps", "1", "--warmup", "0", .. extra], o, e);
        Assert.True(code == 0, e.ToString());
        return JsonDocument.Parse(o.ToString().Trim()).RootElement;
    }

    [Fact]
    public async Task Layers_stacks_the_same_layer_shapes_deeper()
    {
        var c = BuiltinModels.Micro();
        Assert.Equal(2, c.NumHiddenLayers);
        var plain = await Row();
        var deep = await Row("--layers", "4");
        Assert.Equal(2, plain.GetProperty("layers").GetInt32());
        Assert.Equal(4, deep.GetProperty("layers").GetInt32());
        // Two more MoE layers, each: attention (q LoRA, kv down with rope, kv up, o), two norms, the router's weight (its
        // correction bias is a buffer), shared and routed experts.
        long h = c.HiddenSize, heads = c.NumAttentionHeads, qk = c.QkNopeHeadDim + c.QkRopeHeadDim;
        long attention = h * c.QLoraRank!.Value + c.QLoraRank.Value + c.QLoraRank.Value * heads * qk
                         + h * (c.KvLoraRank + c.QkRopeHeadDim) + c.KvLoraRank + c.KvLoraRank * heads * (c.QkNopeHeadDim + c.VHeadDim)
                         + heads * c.VHeadDim * h;
        long moe = 3 * h * c.MoeIntermediateSize * (c.NRoutedExperts + c.NSharedExperts) + c.NRoutedExperts * h;
        long extra = 2 * (attention + 2 * h + moe);
        Assert.Equal(extra, deep.GetProperty("parameters").GetInt64() - plain.GetProperty("parameters").GetInt64());
    }

    [Fact]
    public async Task A_depth_without_a_moe_layer_is_a_usage_error()
    {
        var e = new StringWriter();
        Assert.Equal(2, await PostTrain.Cli.CliApp.RunAsync(["bench-train", "--model", "micro-moe", "--device", "cpu", "--layers", "1"], TextWriter.Null, e));
        Assert.Contains("--layers: 1", e.ToString());
    }

    [Fact]
    public async Task Fp8_min_dim_is_recorded_and_refused_without_fp8()
    {
        var row = await RowIn("fp8", "--fp8-min-dim", "64");
        Assert.Equal("fp8", row.GetProperty("precision").GetString());
        Assert.Equal(64, row.GetProperty("fp8_min_dim").GetInt32());
        var e = new StringWriter();
        Assert.Equal(2, await PostTrain.Cli.CliApp.RunAsync(["bench-train", "--model", "micro-moe", "--device", "cpu", "--dtype", "bfloat16",
            "--fp8-min-dim", "64"], TextWriter.Null, e));
        Assert.Contains("--fp8-min-dim: 64 (a width >= 0, with --dtype fp8 only)", e.ToString());
    }
}
