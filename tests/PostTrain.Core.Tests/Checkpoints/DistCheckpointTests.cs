// Distributed checkpoint format in one process (the multi-rank cases run under mpirun in the training tests): the
// writer's files and manifest, slices read back by hand-computed value, and a manifest that does not match its files
// (a piece missing, a file name that is no rank file, a global shape the run does not have) is an error naming the
// tensor instead of a silently wrong tensor.
using System.Text.Json.Nodes;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Distributed;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class DistCheckpointTests
{
    private static string Save(TempDir tmp)
    {
        var rows = TensorSlice.Along([4, 3], 0, 0, 4);          // one rank holds every row of a sliced tensor
        DistCheckpointWriter.Save(SingleProcessGroup.Instance, tmp.Path,
            [
                new("experts", arange(12, dtype: ScalarType.Float32).reshape(4, 3), rows),
                new("optimizer/w.step", tensor(3L), TensorSlice.Whole([]), Param: "w"),
            ],
            new JsonObject { ["step"] = 3 });
        return tmp.Path;
    }

    [Fact]
    public void WritesOneRankFileAndAManifestThatReadsBack()
    {
        using var tmp = new TempDir();
        Save(tmp);
        Assert.Equal(["manifest.json", "rank-00000-of-00001.safetensors"], tmp.Entries());
        using var reader = DistCheckpointReader.Open(tmp.Path);
        Assert.Equal(3, (int)reader.Manifest.Run["step"]!);
        Assert.Equal("w", reader.Manifest.Tensors["optimizer/w.step"][0].Param);
        Assert.Equal(3L, reader.Read("optimizer/w.step").item<long>());
        // rows 1..3 of arange(12).reshape(4, 3): 3..8; column 2: 2, 5, 8, 11
        Assert.Equal([3f, 4f, 5f, 6f, 7f, 8f], reader.Read("experts", TensorSlice.Along([4, 3], 0, 1, 2)).data<float>().ToArray());
        Assert.Equal([2f, 5f, 8f, 11f], reader.Read("experts", TensorSlice.Along([4, 3], 1, 2, 1)).data<float>().ToArray());
    }

    [Fact]
    public void AManifestThatDoesNotMatchItsFilesIsAnErrorNamingTheTensor()
    {
        using var tmp = new TempDir();
        Save(tmp);
        string manifest = tmp.File(DistCheckpointManifest.FileName), text = File.ReadAllText(manifest);

        File.WriteAllText(manifest, text.Replace("\"length\": 4", "\"length\": 3"));     // the piece claims rows 0..3 only
        using (var reader = DistCheckpointReader.Open(tmp.Path))
        {
            var e = Assert.Throws<InvalidDataException>(() => reader.Read("experts"));
            Assert.Contains("'experts'", e.Message);
            e = Assert.Throws<InvalidDataException>(() => reader.Read("experts", TensorSlice.Along([5, 3], 0, 0, 5)));
            Assert.Contains("saved with shape [4, 3], the run has [5, 3]", e.Message);
        }

        File.WriteAllText(manifest, text.Replace("rank-00000-of-00001.safetensors", "../elsewhere.safetensors"));
        var bad = Assert.Throws<InvalidDataException>(() => DistCheckpointReader.Open(tmp.Path));
        Assert.Contains("is not a rank file name", bad.Message);
        Assert.Contains(manifest, bad.Message);
    }
}
