// Save -> Load round trips: every supported dtype bit for bit, odd shapes, non-contiguous input.
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class SafeTensorsRoundTripTests
{
    public static TheoryData<string, int> Dtypes() => new()
    {
        { "F32", (int)ScalarType.Float32 }, { "BF16", (int)ScalarType.BFloat16 }, { "F16", (int)ScalarType.Float16 },
        { "F64", (int)ScalarType.Float64 }, { "I64", (int)ScalarType.Int64 }, { "I32", (int)ScalarType.Int32 },
        { "I16", (int)ScalarType.Int16 }, { "I8", (int)ScalarType.Int8 }, { "U8", (int)ScalarType.Byte },
        { "BOOL", (int)ScalarType.Bool }, { "F8_E4M3", 24 }, { "F8_E5M2", 23 },
    };

    [Theory]
    [MemberData(nameof(Dtypes))]
    public void EveryDtypeRoundTripsBitIdentical(string dtypeName, int scalarType)
    {
        using var dir = new TempDir();
        var dtype = (ScalarType)scalarType;
        var tensors = new Dictionary<string, Tensor>
        {
            ["a.matrix"] = TestTensors.RandomBits(dtype, [3, 5], seed: 1),
            ["b.vector"] = TestTensors.RandomBits(dtype, [7], seed: 2),
            ["c.scalar"] = TestTensors.RandomBits(dtype, [], seed: 3),
            ["d.empty"] = TestTensors.RandomBits(dtype, [0, 4], seed: 4),
        };
        string file = dir.File("model.safetensors");
        SafeTensors.Save(file, tensors);

        var header = SafeTensors.ReadHeader(file);
        Assert.All(header.Values, info => Assert.Equal(dtypeName, info.Dtype));
        var loaded = SafeTensors.Load(file);
        Assert.Equal(tensors.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, original) in tensors)
        {
            Assert.Equal(dtype, loaded[name].dtype);
            Assert.Equal(original.shape, loaded[name].shape);
            Assert.Equal(TestTensors.Bytes(original), TestTensors.Bytes(loaded[name]));
        }
    }

    [Fact]
    public void MixedDtypesAndNonContiguousInputRoundTrip()
    {
        using var dir = new TempDir();
        using var source = torch.arange(12, dtype: ScalarType.Float32).reshape(3, 4);
        var transposed = source.t(); // (4, 3), not contiguous
        Assert.False(transposed.is_contiguous());
        var tensors = new Dictionary<string, Tensor>
        {
            ["t"] = transposed,
            ["h"] = torch.tensor(new float[] { 1.5f, -2f, 3.25f }).to(ScalarType.BFloat16),
            ["i"] = torch.tensor(new long[] { long.MinValue, 0, long.MaxValue }),
        };
        string file = dir.File("x.safetensors");
        SafeTensors.Save(file, tensors);
        var loaded = SafeTensors.Load(file);

        Assert.Equal(new float[] { 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }, loaded["t"].data<float>().ToArray());
        Assert.Equal(new float[] { 1.5f, -2f, 3.25f }, loaded["h"].to(ScalarType.Float32).data<float>().ToArray());
        Assert.Equal(new[] { long.MinValue, 0, long.MaxValue }, loaded["i"].data<long>().ToArray());
    }

    [Fact]
    public void LoadOptionsFilterAndDeviceApply()
    {
        using var dir = new TempDir();
        string file = dir.File("m.safetensors");
        SafeTensors.Save(file, new Dictionary<string, Tensor> { ["keep.w"] = torch.ones(2), ["drop.w"] = torch.zeros(2) });
        var loaded = SafeTensors.Load(file, new SafeTensorsLoadOptions { Filter = n => n.StartsWith("keep"), Device = torch.CPU });
        Assert.Equal(["keep.w"], loaded.Keys);
        Assert.Equal(DeviceType.CPU, loaded["keep.w"].device_type);
    }

    [Fact]
    public void ReadIntoConvertsDtypeAndWritesStraightIntoMatchingTensors()
    {
        using var dir = new TempDir();
        string file = dir.File("m.safetensors");
        SafeTensors.Save(file, new Dictionary<string, Tensor> { ["w"] = torch.tensor(new float[] { 0.5f, -1.25f, 3f }) });
        using var checkpoint = SafeTensorsCheckpoint.Open(file);

        using var same = torch.zeros(3);
        checkpoint.ReadInto("w", same);
        Assert.Equal(new[] { 0.5f, -1.25f, 3f }, same.data<float>().ToArray());

        using var half = torch.zeros(3, dtype: ScalarType.Float64);
        checkpoint.ReadInto("w", half);
        Assert.Equal(new[] { 0.5, -1.25, 3.0 }, half.data<double>().ToArray());

        using var wrong = torch.zeros(4);
        var e = Assert.Throws<SafeTensorsException>(() => checkpoint.ReadInto("w", wrong));
        Assert.Equal("w", e.Tensor);
        Assert.Contains("[3]", e.Message);
        Assert.Contains("[4]", e.Message);
    }
}
