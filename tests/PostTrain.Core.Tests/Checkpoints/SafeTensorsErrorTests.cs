// Every malformed input fails with a SafeTensorsException that names the file and, where one is
// involved, the tensor. Corrupt files are built by hand: u64 length + JSON + data bytes.
using System.Text;
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class SafeTensorsErrorTests
{
    private static string WriteRaw(TempDir dir, string json, int dataBytes, string name = "bad.safetensors")
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + dataBytes];
        BitConverter.GetBytes((ulong)header.Length).CopyTo(bytes, 0);
        header.CopyTo(bytes, 8);
        string path = dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static SafeTensorsException Fails(string path, string? tensor, string fragment)
    {
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(path));
        Assert.Equal(Path.GetFullPath(path), e.File);
        Assert.Equal(tensor, e.Tensor);
        Assert.Contains(fragment, e.Message);
        Assert.StartsWith(Path.GetFullPath(path), e.Message);
        if (tensor is not null) Assert.Contains($"'{tensor}'", e.Message);
        return e;
    }

    [Fact]
    public void FileShorterThanTheLengthPrefix()
    {
        using var dir = new TempDir();
        string path = dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Fails(path, null, "too short");
    }

    [Fact]
    public void HeaderLengthOverTheLimit()
    {
        using var dir = new TempDir();
        string path = dir.File("huge.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(200_000_000UL), .. "{}"u8.ToArray()]);
        Fails(path, null, "exceeds");
    }

    [Fact]
    public void HeaderLengthPastEndOfFile()
    {
        using var dir = new TempDir();
        string path = dir.File("cut.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(64UL), .. "{\"a\":"u8.ToArray()]);
        Fails(path, null, "runs past the end of the file");
    }

    [Fact]
    public void InvalidJson() => Check("{\"a\": {\"dtype\": \"F32\",", 0, null, "not valid JSON");

    [Fact]
    public void HeaderNotAnObject() => Check("[1, 2]  ", 0, null, "does not start with '{'");

    [Fact]
    public void UnknownDtype() =>
        Check("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "w", "unknown dtype 'Q7'");

    [Fact]
    public void ShapeAndByteCountDisagree() =>
        Check("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12, "w", "needs 16");

    [Fact]
    public void OverlappingOffsets() =>
        Check("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8, "b", "overlap tensor 'a'");

    [Fact]
    public void HoleBetweenTensors() =>
        Check("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
            12, "b", "hole");

    [Fact]
    public void OffsetsOutOfRange() =>
        Check("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[4,20]}}",
            8, "b", "run past the end of the data");

    [Fact]
    public void TrailingBytesAfterTheLastTensor() =>
        Check("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9, null, "5 bytes after the last tensor");

    [Fact]
    public void NegativeOrMalformedOffsets()
    {
        Check("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 0, "a", "not a non-negative integer");
        Check("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 0, "a", "has 1 entries, expected 2");
        Check("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "a", "'shape'");
        Check("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "a", "end before they start");
    }

    [Fact]
    public void DuplicateTensorName() =>
        Check("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
            2, "a", "twice");

    [Fact]
    public void BadMetadata() =>
        Check("{\"__metadata__\":{\"format\":1},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, null, "'format'");

    [Fact]
    public void TruncatedFileNamesTheCutTensor()
    {
        using var dir = new TempDir();
        string path = dir.File("model.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["first"] = torch.ones(4, dtype: ScalarType.Float64), ["last"] = torch.ones(4) });
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^3]);
        Fails(path, "last", "file truncated?");
        Assert.Throws<SafeTensorsException>(() => SafeTensors.ReadHeader(path));
    }

    [Fact]
    public void MissingPathAndEmptyDirectory()
    {
        using var dir = new TempDir();
        Fails(dir.File("nope"), null, "no such file or directory");
        Fails(dir.Path, null, "neither model.safetensors nor model.safetensors.index.json");
    }

    [Fact]
    public void WeightMapPointsToMissingShard()
    {
        using var dir = new TempDir();
        string ckpt = ShardedCheckpoint(dir);
        File.Delete(Path.Combine(ckpt, "model-00002-of-00002.safetensors"));
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(ckpt));
        Assert.Equal(Path.Combine(ckpt, "model.safetensors.index.json"), e.File);
        Assert.Equal("b", e.Tensor);
        Assert.Contains("missing file 'model-00002-of-00002.safetensors'", e.Message);
    }

    [Fact]
    public void WeightMapTensorAbsentFromItsShard()
    {
        using var dir = new TempDir();
        string ckpt = ShardedCheckpoint(dir);
        string index = Path.Combine(ckpt, "model.safetensors.index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"b\": \"model-00002", "\"ghost\": \"model-00002-of-00002.safetensors\",\n    \"b\": \"model-00002"));
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(ckpt));
        Assert.Equal(Path.Combine(ckpt, "model-00002-of-00002.safetensors"), e.File);
        Assert.Equal("ghost", e.Tensor);
        Assert.Contains("absent from the shard", e.Message);
    }

    [Fact]
    public void CorruptIndex()
    {
        using var dir = new TempDir();
        string ckpt = ShardedCheckpoint(dir);
        string index = Path.Combine(ckpt, "model.safetensors.index.json");
        File.WriteAllText(index, "{\"metadata\": {}}");
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(ckpt));
        Assert.Equal(index, e.File);
        Assert.Contains("weight_map", e.Message);

        File.WriteAllText(index, "{\"weight_map\": {\"a\": \"../elsewhere.safetensors\"}}");
        e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(ckpt));
        Assert.Equal("a", e.Tensor);

        File.WriteAllText(index, "{\"weight_map\": ");
        e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(ckpt));
        Assert.Contains("not valid JSON", e.Message);
    }

    [Fact]
    public void UnsupportedDtypeOnSaveNamesTheTensor()
    {
        using var dir = new TempDir();
        string path = dir.File("c.safetensors");
        var e = Assert.Throws<SafeTensorsException>(() =>
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["ok"] = torch.ones(1), ["complex"] = torch.ones(2, dtype: ScalarType.ComplexFloat32) }));
        Assert.Equal("complex", e.Tensor);
        Assert.Empty(dir.Entries());
    }

    private static string ShardedCheckpoint(TempDir dir)
    {
        string ckpt = Path.Combine(dir.Path, "ckpt");
        SafeTensors.SaveSharded(ckpt, new Dictionary<string, Tensor> { ["a"] = torch.ones(4), ["b"] = torch.zeros(4) }, 16);
        return ckpt;
    }

    private static void Check(string json, int dataBytes, string? tensor, string fragment)
    {
        using var dir = new TempDir();
        Fails(WriteRaw(dir, json, dataBytes), tensor, fragment);
    }
}
