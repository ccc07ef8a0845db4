// Distributed checkpoint pieces at one world size, read back at another. The global tensors are known by hand:
// "experts" = arange(8 * 3).reshape(8, 3) sharded along dim 0 (each rank its EvenSplit(8, size) rows, as expert
// parallel shards experts), "w" = arange(5) * 0.5 replicated on every rank (stored once, by rank 0), "t" = the scalar
// 7 held by rank 0 only.
//   ckpt-save <dir>: every rank passes its pieces to DistCheckpointWriter.
//   ckpt-load <dir>: every rank (any number) reads its own row slice of "experts", a column slice (dim 1, another dim
//                    than the saved one), the whole tensor, "w" and "t", and compares them with the hand-made values.
using System.Text.Json.Nodes;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Distributed;
using static TorchSharp.torch;

namespace PostTrain.Tests.DistWorker;

internal static class CheckpointScenario
{
    private static readonly long[] Shape = [8, 3];

    private static Tensor Experts() => arange(24, dtype: ScalarType.Float32).reshape(Shape);

    private static TensorSlice Rows(ProcessGroup g)
    {
        var split = ProcessGroup.EvenSplit(Shape[0], g.Size);
        return TensorSlice.Along(Shape, 0, split.Take(g.Rank).Sum(), split[g.Rank]);
    }

    public static void Save(ProcessGroup g, string dir)
    {
        using var scope = NewDisposeScope();
        var rows = Rows(g);
        var entries = new List<DistCheckpointWriter.Entry>
        {
            new("experts", Experts().narrow(0, rows.Offset, rows.Length), rows),
            new("w", arange(5, dtype: ScalarType.Float32) * 0.5, TensorSlice.Whole([5])),
        };
        if (g.Rank == 0) entries.Add(new("t", tensor(7L), TensorSlice.Whole([])));
        var m = DistCheckpointWriter.Save(g, dir, entries, new JsonObject { ["what"] = "scenario" });
        Check.Equal(m.Tensors["experts"].Select(p => p.File).ToList(),
            Enumerable.Range(0, g.Size).Select(r => DistCheckpointManifest.RankFileName(r, g.Size)).ToList(), "experts pieces");
        Check.Equal(m.Tensors["w"].Select(p => p.File).ToList(), [DistCheckpointManifest.RankFileName(0, g.Size)], "w stored once");
        g.Barrier();
        Console.WriteLine($"ok ckpt-save rank {g.Rank}/{g.Size}");
    }

    public static void Load(ProcessGroup g, string dir)
    {
        using var scope = NewDisposeScope();
        using var reader = DistCheckpointReader.Open(dir);
        var rows = Rows(g);
        Check.Close(reader.Read("experts", rows), Experts().narrow(0, rows.Offset, rows.Length), 0, "my rows of experts");
        var cols = TensorSlice.Along(Shape, 1, 1, 2);
        Check.Close(reader.Read("experts", cols), Experts().narrow(1, 1, 2), 0, "columns 1..3 of experts");
        Check.Close(reader.Read("experts"), Experts(), 0, "whole experts");
        Check.Close(reader.Read("w"), arange(5, dtype: ScalarType.Float32) * 0.5, 0, "w");
        if (reader.Read("t").item<long>() != 7) throw new InvalidOperationException("t is not 7");
        Console.WriteLine($"ok ckpt-load rank {g.Rank}/{g.Size} from {reader.Manifest.WorldSize} ranks");
    }
}
