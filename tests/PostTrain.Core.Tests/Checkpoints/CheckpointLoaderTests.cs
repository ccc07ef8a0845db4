// CheckpointLoader.LoadInto: copies into existing parameters/buffers with dtype conversion, and
// reports every missing, unexpected and mis-shaped tensor in one error before copying anything.
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class CheckpointLoaderTests
{
    private static string Checkpoint(TempDir dir, Dictionary<string, Tensor> tensors)
    {
        string ckpt = Path.Combine(dir.Path, "ckpt");
        SafeTensors.SaveSharded(ckpt, tensors, 24); // several shards
        return ckpt;
    }

    [Fact]
    public void CopiesIntoParametersAndBuffersConvertingDtypes()
    {
        using var dir = new TempDir();
        string ckpt = Checkpoint(dir, new Dictionary<string, Tensor>
        {
            ["w"] = torch.tensor(new[] { 1f, -2f, 0.5f, 4f, 8f, -0.25f }).reshape(2, 3),
            ["b"] = torch.tensor(new[] { 3f, 2f, 1f }),
            ["buf"] = torch.tensor(new long[] { 7, 9 }),
        });
        var w = torch.nn.Parameter(torch.zeros(2, 3, dtype: ScalarType.BFloat16));
        var b = torch.nn.Parameter(torch.zeros(3));
        var buf = torch.zeros(2, dtype: ScalarType.Float64);
        var report = CheckpointLoader.LoadInto(new Dictionary<string, Tensor> { ["w"] = w, ["b"] = b, ["buf"] = buf }, ckpt);

        Assert.Equal(["b", "buf", "w"], report.Loaded.Order());
        Assert.Equal(new[] { 1f, -2f, 0.5f, 4f, 8f, -0.25f }, w.to(ScalarType.Float32).data<float>().ToArray());
        Assert.Equal(new[] { 3f, 2f, 1f }, b.data<float>().ToArray());
        Assert.Equal(new[] { 7.0, 9.0 }, buf.data<double>().ToArray());
        Assert.True(w.requires_grad);
        Assert.True(w.is_leaf);
        Assert.Equal(ScalarType.BFloat16, w.dtype);
    }

    [Fact]
    public void ReportsAllMissingUnexpectedAndMisShapedAtOnce()
    {
        using var dir = new TempDir();
        string ckpt = Checkpoint(dir, new Dictionary<string, Tensor>
        {
            ["ok"] = torch.ones(2),
            ["w"] = torch.ones(2, 3),
            ["extra.a"] = torch.ones(5),
            ["extra.b"] = torch.ones(1, 1),
            ["model.rotary_emb.inv_freq"] = torch.ones(4),
        });
        var ok = torch.zeros(2);
        var expected = new Dictionary<string, Tensor>
        {
            ["ok"] = ok,
            ["w"] = torch.zeros(3, 2),
            ["gone.a"] = torch.zeros(4),
            ["gone.b"] = torch.zeros(1, 7),
        };
        var e = Assert.Throws<CheckpointMismatchException>(() => CheckpointLoader.LoadInto(expected, ckpt,
            new CheckpointLoadOptions { AllowUnexpected = [@"rotary_emb\.inv_freq$"] }));

        Assert.Equal(["gone.a", "gone.b"], e.Missing);
        Assert.Equal(["extra.a", "extra.b"], e.Unexpected);
        Assert.Equal(["w"], e.MisShaped);
        Assert.Contains("2 missing, 2 unexpected, 1 mis-shaped", e.Message);
        Assert.Contains("gone.a [4]", e.Message);
        Assert.Contains("gone.b [1, 7]", e.Message);
        Assert.Contains("extra.a [5] in model-0000", e.Message);
        Assert.Contains("extra.b [1, 1] in model-0000", e.Message);
        Assert.Contains("w: model [3, 2], checkpoint [2, 3]", e.Message);
        Assert.DoesNotContain("inv_freq", e.Message);
        Assert.Equal(new[] { 0f, 0f }, ok.data<float>().ToArray()); // nothing copied
    }

    [Fact]
    public void AllowListsSkipAndReport()
    {
        using var dir = new TempDir();
        string ckpt = Checkpoint(dir, new Dictionary<string, Tensor> { ["a"] = torch.ones(2), ["model.rotary_emb.inv_freq"] = torch.ones(4) });
        var a = torch.zeros(2);
        var mtp = torch.full(3, 5f);
        var report = CheckpointLoader.LoadInto(new Dictionary<string, Tensor> { ["a"] = a, ["model.layers.61.eh_proj.weight"] = mtp }, ckpt,
            new CheckpointLoadOptions { AllowUnexpected = ["rotary_emb.inv_freq"], AllowMissing = [@"^model\.layers\.61\."] });
        Assert.Equal(["a"], report.Loaded);
        Assert.Equal(["model.rotary_emb.inv_freq"], report.IgnoredUnexpected);
        Assert.Equal(["model.layers.61.eh_proj.weight"], report.AllowedMissing);
        Assert.Equal(new[] { 1f, 1f }, a.data<float>().ToArray());
        Assert.Equal(new[] { 5f, 5f, 5f }, mtp.data<float>().ToArray());
    }

    [Fact]
    public void Fp8CheckpointHintsAndDequantisesIntoBf16()
    {
        using var dir = new TempDir();
        // (130, 2) e4m3 weight: rows 0..127 use scale row 0, rows 128..129 scale row 1.
        var bytes = new byte[260];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = i % 2 == 0 ? (byte)0x38 : (byte)0x3C; // 1.0, 1.5
        string ckpt = Checkpoint(dir, new Dictionary<string, Tensor>
        {
            ["q.weight"] = TestTensors.FromBytes(TestTensors.Float8E4M3, [130, 2], bytes),
            ["q.weight_scale_inv"] = torch.tensor(new[] { 2f, -4f }).reshape(2, 1),
        });
        var q = torch.nn.Parameter(torch.zeros(130, 2, dtype: ScalarType.BFloat16));
        var expected = new Dictionary<string, Tensor> { ["q.weight"] = q };

        var e = Assert.Throws<CheckpointMismatchException>(() => CheckpointLoader.LoadInto(expected, ckpt));
        Assert.Equal(["q.weight_scale_inv"], e.Unexpected);
        Assert.Contains("DequantizeFp8 = true", e.Message);

        CheckpointLoader.LoadInto(expected, ckpt, new CheckpointLoadOptions { DequantizeFp8 = true });
        var values = q.to(ScalarType.Float32).data<float>().ToArray();
        Assert.Equal([2f, 3f], values[..2]);             // row 0: 1.0*2, 1.5*2
        Assert.Equal([2f, 3f], values[254..256]);        // row 127
        Assert.Equal([-4f, -6f], values[256..258]);      // row 128: 1.0*-4, 1.5*-4
        Assert.Equal([-4f, -6f], values[258..260]);      // row 129
    }
}
