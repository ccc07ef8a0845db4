// Reads tensors of a committed distributed checkpoint (DistCheckpointManifest) at any number of processes: Read
// assembles any slice of a global tensor (or the whole of it) from the pieces the saving ranks wrote, whatever their
// number. Each piece and the wanted slice are boxes in the global index space (a range along the sliced dim, the full
// extent elsewhere); every piece's intersection with the wanted box is copied into place, and the copied volume must
// equal the wanted volume (a missing or overlapping piece is an error naming the tensor).
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public sealed class DistCheckpointReader : IDisposable
{
    private readonly Dictionary<string, SafeTensorsCheckpoint> open = new(StringComparer.Ordinal);

    public string Directory { get; }
    public DistCheckpointManifest Manifest { get; }

    private DistCheckpointReader(string dir, DistCheckpointManifest manifest) => (Directory, Manifest) = (dir, manifest);

    /// <summary>Whether dir holds a committed distributed checkpoint (its manifest).</summary>
    public static bool IsCommitted(string dir) => File.Exists(Path.Combine(dir, DistCheckpointManifest.FileName));

    public static DistCheckpointReader Open(string dir) => new(dir, DistCheckpointManifest.Read(dir));

    /// <summary>The global shape of a stored tensor.</summary>
    public long[] GlobalShape(string name) => Pieces(name)[0].GlobalShape;

    /// <summary>The slice <paramref name="want"/> of tensor <paramref name="name"/> (the whole tensor when null), as a
    /// new CPU tensor of the stored dtype.</summary>
    public Tensor Read(string name, TensorSlice? want = null)
    {
        var pieces = Pieces(name);
        var global = pieces[0].GlobalShape;
        want ??= TensorSlice.Whole(global);
        if (!want.GlobalShape.SequenceEqual(global))
            throw new InvalidDataException($"{Where}: tensor '{name}' was saved with shape {ShapeFormat.Of(global)}, the run has {ShapeFormat.Of(want.GlobalShape)}");
        using var scope = NewDisposeScope();
        var result = empty(want.LocalShape, SafeTensorsDtype.FromName(pieces[0].Dtype).ScalarType);
        long copied = 0;
        foreach (var p in pieces)
        {
            var box = Enumerable.Range(0, global.Length).Select(d =>
            {
                var (ps, pe) = p.Slice.Range(d);
                var (ws, we) = want.Range(d);
                return (Lo: Math.Max(ps, ws), Hi: Math.Min(pe, we), Piece: ps, Want: ws);
            }).ToArray();
            if (box.Any(b => b.Hi <= b.Lo)) continue;
            var stored = Opened(p.File).Read(name);
            if (!stored.shape.SequenceEqual(p.Slice.LocalShape))
                throw new InvalidDataException($"{Path.Combine(Directory, p.File)}: tensor '{name}' has shape {ShapeFormat.Of(stored.shape)}, the manifest says {ShapeFormat.Of(p.Slice.LocalShape)}");
            Tensor src = stored, dst = result;
            for (int d = 0; d < box.Length; d++)
            {
                src = src.narrow(d, box[d].Lo - box[d].Piece, box[d].Hi - box[d].Lo);
                dst = dst.narrow(d, box[d].Lo - box[d].Want, box[d].Hi - box[d].Lo);
            }
            dst.copy_(src);
            copied += box.Aggregate(1L, (v, b) => v * (b.Hi - b.Lo));
        }
        long wanted = want.LocalShape.Aggregate(1L, (a, b) => a * b);
        if (copied != wanted)
            throw new InvalidDataException($"{Where}: tensor '{name}': the saved pieces cover {copied} of the {wanted} elements of {want}");
        return result.MoveToOuterDisposeScope();
    }

    private string Where => Path.Combine(Directory, DistCheckpointManifest.FileName);

    private List<DistCheckpointPiece> Pieces(string name) =>
        Manifest.Tensors.TryGetValue(name, out var p) ? p : throw new InvalidDataException($"{Where}: no tensor '{name}' in the checkpoint");

    private SafeTensorsCheckpoint Opened(string file)
    {
        if (!open.TryGetValue(file, out var c)) open[file] = c = SafeTensorsCheckpoint.Open(Path.Combine(Directory, file));
        return c;
    }

    public void Dispose()
    {
        foreach (var c in open.Values) c.Dispose();
    }
}
