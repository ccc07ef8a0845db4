// Writes one step of a distributed checkpoint (collective: every rank calls it with the tensors it holds).
//   1. The ranks all-gather what each holds (name, slice, dtype; no tensor data). A piece (name + slice) that several
//      ranks hold (a replicated tensor, or one expert slice held by every data-parallel replica) is written once, by
//      the lowest rank holding it. Pieces of one name must agree on the global shape and dtype.
//   2. Each rank writes its pieces to dir/rank-RRRRR-of-WWWWW.safetensors atomically (temp file + rename); nothing
//      is gathered to one rank, so the memory of a save is the rank's own state.
//   3. After a barrier (every rank file is in place), rank 0 runs beforeCommit (its shared files: model directory,
//      config) and writes manifest.json atomically: the step is committed. The caller barriers again before any
//      rank relies on the commit.
// A rank killed at any point leaves no manifest (or the previous one is never replaced: the caller removes a stale
// step directory before saving into it), so the save is not committed.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PostTrain.Core.Distributed;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public static class DistCheckpointWriter
{
    /// <summary>A tensor a rank holds: its name in the checkpoint, the piece of the global tensor it is, and the
    /// parameter it belongs to (optimizer-state entries; null for the parameter itself).</summary>
    public sealed record Entry(string Name, Tensor Tensor, TensorSlice Slice, string? Param = null);

    private sealed record Held(string Name, string Dtype, long[] GlobalShape, int? Dim, long? Offset, long? Length, string? Param);

    /// <summary>Collective. Returns the manifest every rank agreed on (written to disk by rank 0).</summary>
    public static DistCheckpointManifest Save(ProcessGroup group, string dir, IReadOnlyList<Entry> entries, JsonObject run, Action? beforeCommit = null)
    {
        var mine = entries.Select(Describe).ToList();
        if (mine.Select(h => h.Name).Distinct(StringComparer.Ordinal).Count() != mine.Count)
            throw new ArgumentException($"rank {group.Rank}: a tensor name is given twice", nameof(entries));
        var all = group.AllGatherBytes(JsonSerializer.SerializeToUtf8Bytes(mine))
            .Select(b => JsonSerializer.Deserialize<List<Held>>(b)!).ToList();

        // the lowest rank holding a piece writes it
        var tensors = new SortedDictionary<string, List<DistCheckpointPiece>>(StringComparer.Ordinal);
        var writtenHere = new List<string>();
        for (int r = 0; r < all.Count; r++)
            foreach (var h in all[r])
            {
                var piece = new DistCheckpointPiece(DistCheckpointManifest.RankFileName(r, group.Size), h.Dtype, h.GlobalShape, h.Dim, h.Offset, h.Length, h.Param);
                if (!tensors.TryGetValue(h.Name, out var pieces)) tensors[h.Name] = pieces = [];
                else if (!pieces[0].GlobalShape.SequenceEqual(h.GlobalShape) || pieces[0].Dtype != h.Dtype)
                    throw new InvalidOperationException($"tensor '{h.Name}': rank {r} holds {h.Dtype} {ShapeFormat.Of(h.GlobalShape)}, " +
                        $"an earlier rank {pieces[0].Dtype} {ShapeFormat.Of(pieces[0].GlobalShape)}");
                if (pieces.Any(p => p.Slice.Equals(piece.Slice))) continue;
                pieces.Add(piece);
                if (r == group.Rank) writtenHere.Add(h.Name);
            }

        Directory.CreateDirectory(dir);
        if (writtenHere.Count > 0)
        {
            using var scope = NewDisposeScope();
            var byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
            var write = writtenHere.ToDictionary(n => n, n => byName[n].Tensor.detach().cpu().contiguous(), StringComparer.Ordinal);
            SafeTensors.Save(Path.Combine(dir, DistCheckpointManifest.RankFileName(group.Rank, group.Size)), write);
        }
        group.Barrier();                                   // every rank file is in place
        var manifest = new DistCheckpointManifest(DistCheckpointManifest.FormatName, DistCheckpointManifest.CurrentVersion, group.Size, tensors, run);
        if (group.IsMain)
        {
            beforeCommit?.Invoke();
            AtomicFiles.WriteFile(Path.Combine(dir, DistCheckpointManifest.FileName), temp => WriteText(temp, manifest.ToJson()));
        }
        return manifest;
    }

    private static Held Describe(Entry e)
    {
        if (!e.Tensor.shape.SequenceEqual(e.Slice.LocalShape))
            throw new ArgumentException($"tensor '{e.Name}' has shape {ShapeFormat.Of(e.Tensor.shape)}, its slice {e.Slice} needs {ShapeFormat.Of(e.Slice.LocalShape)}");
        if (!SafeTensorsDtype.TryFromScalarType(e.Tensor.dtype, out var dtype))
            throw new ArgumentException($"tensor '{e.Name}': dtype {e.Tensor.dtype} cannot be stored in safetensors");
        return e.Slice.IsWhole ? new(e.Name, dtype.Name, e.Slice.GlobalShape, null, null, null, e.Param)
            : new(e.Name, dtype.Name, e.Slice.GlobalShape, e.Slice.Dim, e.Slice.Offset, e.Slice.Length, e.Param);
    }

    private static void WriteText(string path, string text)
    {
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        stream.Write(Encoding.UTF8.GetBytes(text));
        stream.Flush(flushToDisk: true);
    }
}
