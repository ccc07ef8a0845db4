// FP8 (DeepSeek-V3 release format) dequantisation against hand-computed values: e4m3 codes
// 0x38 = 1.0, 0x40 = 2.0, 0x30 = 0.5, 0xB8 = -1.0, 0x3C = 1.5; w = value * scale of its 128x128 block,
// including partial edge blocks (130 x 129 has blocks of 128 and 2 rows, 128 and 1 columns).
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class Fp8DequantizationTests
{
    private static readonly byte[] Codes = [0x38, 0x40, 0x30, 0xB8, 0x3C];
    private static readonly float[] Values = [1f, 2f, 0.5f, -1f, 1.5f];

    private static Tensor Weight(int rows, int cols)
    {
        var bytes = new byte[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                bytes[i * cols + j] = Codes[(i + j) % 5];
        return TestTensors.FromBytes(TestTensors.Float8E4M3, [rows, cols], bytes);
    }

    private static float[] Expected(int rows, int cols, float[,] scale)
    {
        var result = new float[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                result[i * cols + j] = Values[(i + j) % 5] * scale[i / 128, j / 128];
        return result;
    }

    private static readonly float[,] EdgeScale = { { 2f, 3f }, { 5f, 0.25f } };

    [Fact]
    public void PartialEdgeBlocksUseTheirOwnScale()
    {
        using var w = Weight(130, 129);
        using var s = torch.tensor(new[] { 2f, 3f, 5f, 0.25f }).reshape(2, 2);
        using var result = Fp8BlockDequantizer.Dequantize(w, s);
        Assert.Equal(ScalarType.Float32, result.dtype);
        Assert.Equal(new long[] { 130, 129 }, result.shape);
        Assert.Equal(Expected(130, 129, EdgeScale), result.data<float>().ToArray());
        Assert.Equal(2f, result[0, 0].item<float>());        // 1.0 * 2
        Assert.Equal(-3f, result[0, 128].item<float>());     // code (0+128)%5=3 -> -1.0 * 3
        Assert.Equal(7.5f, result[129, 0].item<float>());    // 129%5=4 -> 1.5 * 5
        Assert.Equal(0.125f, result[129, 128].item<float>()); // 257%5=2 -> 0.5 * 0.25
        Assert.Equal(3f, result[127, 127].item<float>());    // 254%5=4 -> 1.5 * 2
        Assert.Equal(5f, result[128, 127].item<float>());    // 255%5=0 -> 1.0 * 5
    }

    [Fact]
    public void WholeBlocksMatchToo()
    {
        var scale = new float[,] { { 4f }, { -0.5f } };
        using var w = Weight(256, 128);
        using var s = torch.tensor(new[] { 4f, -0.5f }).reshape(2, 1);
        using var result = Fp8BlockDequantizer.Dequantize(w, s, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, result.dtype);
        Assert.Equal(Expected(256, 128, scale), result.to(ScalarType.Float32).data<float>().ToArray());
    }

    [Fact]
    public void WrongScaleShapeIsRejected()
    {
        using var w = Weight(130, 129);
        using var s = torch.ones(2, 1);
        var e = Assert.Throws<ArgumentException>(() => Fp8BlockDequantizer.Dequantize(w, s));
        Assert.Contains("[2, 2]", e.Message);
    }

    [Fact]
    public void LoadDequantisesAcrossShardsAndDropsScales()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "fp8");
        var state = new Dictionary<string, Tensor>
        {
            ["layer.weight"] = Weight(130, 129),
            ["layer.weight_scale_inv"] = torch.tensor(new[] { 2f, 3f, 5f, 0.25f }).reshape(2, 2),
            ["norm.weight"] = torch.ones(3),
        };
        SafeTensors.SaveSharded(ckpt, state, 130 * 129); // the weight fills a shard; its scale lands in the next
        var index = File.ReadAllText(Path.Combine(ckpt, "model.safetensors.index.json"));
        Assert.Contains("\"layer.weight\": \"model-00001-of-00002.safetensors\"", index);
        Assert.Contains("\"layer.weight_scale_inv\": \"model-00002-of-00002.safetensors\"", index);

        var raw = SafeTensors.Load(ckpt);
        Assert.Equal(3, raw.Count);
        Assert.Equal(TestTensors.Float8E4M3, raw["layer.weight"].dtype);

        var dequantised = SafeTensors.Load(ckpt, new SafeTensorsLoadOptions { DequantizeFp8 = true });
        Assert.Equal(["layer.weight", "norm.weight"], dequantised.Keys.Order());
        Assert.Equal(Expected(130, 129, EdgeScale), dequantised["layer.weight"].data<float>().ToArray());
    }

    [Fact]
    public void BadScaleShapeInACheckpointNamesFileAndTensor()
    {
        using var dir = new TempDir();
        string file = dir.File("model.safetensors");
        SafeTensors.Save(file, new Dictionary<string, Tensor>
        {
            ["q.weight"] = Weight(130, 129),
            ["q.weight_scale_inv"] = torch.ones(1, 2),
        });
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(file, new SafeTensorsLoadOptions { DequantizeFp8 = true }));
        Assert.Equal("q.weight_scale_inv", e.Tensor);
        Assert.Equal(Path.GetFullPath(file), e.File);
        Assert.Contains("[1, 2]", e.Message);
        Assert.Contains("[2, 2]", e.Message);
    }
}
