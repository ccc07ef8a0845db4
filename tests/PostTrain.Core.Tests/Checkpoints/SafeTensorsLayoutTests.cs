// The on-disk layout, checked against a file built byte by byte from the safetensors spec:
// u64 little-endian header length N, N bytes of JSON padded with spaces to a multiple of 8, then the
// data buffer; tensors ordered by descending dtype (I64, F32, BF16, BOOL here), then by name.
using System.Text;
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class SafeTensorsLayoutTests
{
    private const string HeaderJson =
        "{\"__metadata__\":{\"format\":\"pt\"}," +
        "\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}," +
        "\"weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}," +
        "\"bias\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}," +
        "\"masks\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[22,24]}}";

    // 265 bytes of JSON -> padded with 7 spaces to 272.
    private static byte[] HandBuiltFile()
    {
        var file = new List<byte>();
        file.AddRange([0x10, 0x01, 0, 0, 0, 0, 0, 0]); // N = 272 = 0x110, little-endian
        file.AddRange(Encoding.ASCII.GetBytes(HeaderJson));
        file.AddRange(Encoding.ASCII.GetBytes("       "));
        file.AddRange([0x07, 0, 0, 0, 0, 0, 0, 0]);                 // ids   = [7]
        file.AddRange([0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0]); // weight = [1.5, -2.0] (f32 0x3FC00000, 0xC0000000)
        file.AddRange([0x80, 0x3F, 0x00, 0xBF, 0x40, 0x40]);        // bias  = [1.0, -0.5, 3.0] (bf16 0x3F80, 0xBF00, 0x4040)
        file.AddRange([0x01, 0x00]);                                // masks = [true, false]
        return file.ToArray();
    }

    [Fact]
    public void HandBuiltFileLoadsWithExpectedValues()
    {
        using var dir = new TempDir();
        string path = dir.File("hand.safetensors");
        File.WriteAllBytes(path, HandBuiltFile());
        Assert.Equal(265, HeaderJson.Length);

        var header = SafeTensors.ReadHeader(path);
        Assert.Equal(new long[] { 16, 22 }, new[] { header["bias"].Start, header["bias"].End });
        Assert.Equal("BF16", header["bias"].Dtype);
        Assert.Equal(Path.GetFullPath(path), header["bias"].File);
        Assert.Equal("pt", SafeTensors.ReadMetadata(path)["format"]);

        var t = SafeTensors.Load(path);
        Assert.Equal(new long[] { 7 }, t["ids"].data<long>().ToArray());
        Assert.Equal(new[] { 1.5f, -2f }, t["weight"].data<float>().ToArray());
        Assert.Equal(ScalarType.BFloat16, t["bias"].dtype);
        Assert.Equal(new[] { 1f, -0.5f, 3f }, t["bias"].to(ScalarType.Float32).data<float>().ToArray());
        Assert.Equal(new[] { true, false }, t["masks"].data<bool>().ToArray());
    }

    [Fact]
    public void SaveProducesExactlyTheHandBuiltBytes()
    {
        using var dir = new TempDir();
        string path = dir.File("saved.safetensors");
        // Inserted in a different order than the file's: the writer must sort.
        var tensors = new Dictionary<string, Tensor>
        {
            ["masks"] = torch.tensor(new[] { true, false }),
            ["bias"] = torch.tensor(new[] { 1f, -0.5f, 3f }).to(ScalarType.BFloat16),
            ["weight"] = torch.tensor(new[] { 1.5f, -2f }),
            ["ids"] = torch.tensor(new long[] { 7 }),
        };
        SafeTensors.Save(path, tensors);
        Assert.Equal(HandBuiltFile(), File.ReadAllBytes(path));
    }

    [Fact]
    public void HeaderIsPaddedToEightBytesForAnyNameLength()
    {
        using var dir = new TempDir();
        for (int length = 1; length <= 9; length++)
        {
            string path = dir.File($"p{length}.safetensors");
            SafeTensors.Save(path, new Dictionary<string, Tensor> { [new string('x', length)] = torch.zeros(1) });
            byte[] bytes = File.ReadAllBytes(path);
            long n = BitConverter.ToInt64(bytes, 0);
            Assert.Equal(0, n % 8);
            string json = Encoding.UTF8.GetString(bytes, 8, (int)n);
            string trimmed = json.TrimEnd(' ');
            Assert.True(n - trimmed.Length < 8);
            Assert.EndsWith("}", trimmed);
            Assert.Equal(8 + n + 4, bytes.Length);
        }
    }

    [Fact]
    public void NamesAreEscapedLikeSerdeJson()
    {
        using var dir = new TempDir();
        string path = dir.File("esc.safetensors");
        string name = "a\"b\\c\nd\u0001é";
        SafeTensors.Save(path, new Dictionary<string, Tensor> { [name] = torch.zeros(1) });
        byte[] bytes = File.ReadAllBytes(path);
        string json = Encoding.UTF8.GetString(bytes, 8, (int)BitConverter.ToInt64(bytes, 0));
        Assert.Contains("\"a\\\"b\\\\c\\nd\\u0001é\":{", json);
        Assert.Equal([name], SafeTensors.Load(path).Keys);
    }

    [Fact]
    public void ExtraMetadataIsSortedAndFormatKept()
    {
        using var dir = new TempDir();
        string path = dir.File("meta.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = torch.zeros(1) },
            new Dictionary<string, string> { ["step"] = "10", ["arch"] = "deepseek_v3" });
        byte[] bytes = File.ReadAllBytes(path);
        string json = Encoding.UTF8.GetString(bytes, 8, (int)BitConverter.ToInt64(bytes, 0));
        Assert.StartsWith("{\"__metadata__\":{\"arch\":\"deepseek_v3\",\"format\":\"pt\",\"step\":\"10\"},\"w\":", json);
    }
}
