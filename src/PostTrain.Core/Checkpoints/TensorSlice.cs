// Where a stored tensor sits in the whole (global) tensor it is part of: a contiguous range [Offset, Offset + Length)
// along dimension Dim, or the whole tensor (Dim null). A rank's piece of a parameter sharded over ranks (expert
// parallel: experts along dim 0) is a slice; replicated tensors and whole optimizer-state entries are Whole.
namespace PostTrain.Core.Checkpoints;

public sealed record TensorSlice(long[] GlobalShape, int? Dim = null, long Offset = 0, long Length = 0)
{
    public static TensorSlice Whole(long[] shape) => new(shape);

    public bool IsWhole => Dim is null;

    /// <summary>Shape of the piece: the global shape with Dim cut to Length.</summary>
    public long[] LocalShape => Dim is int d ? GlobalShape.Select((s, i) => i == d ? Length : s).ToArray() : GlobalShape;

    /// <summary>The range along <paramref name="dim"/> this piece covers (the whole extent when it is not sliced there).</summary>
    public (long Start, long End) Range(int dim) => Dim == dim ? (Offset, Offset + Length) : (0, GlobalShape[dim]);

    /// <summary>A checked slice: dim in range, the range inside the global extent.</summary>
    public static TensorSlice Along(long[] globalShape, int dim, long offset, long length)
    {
        if (dim < 0 || dim >= globalShape.Length)
            throw new ArgumentOutOfRangeException(nameof(dim), $"dim {dim} is outside a tensor of shape {ShapeFormat.Of(globalShape)}");
        if (offset < 0 || length < 0 || offset + length > globalShape[dim])
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, {offset + length}) is outside dim {dim} of {ShapeFormat.Of(globalShape)}");
        return new(globalShape, dim, offset, length);
    }

    public override string ToString() =>
        Dim is int d ? $"{ShapeFormat.Of(GlobalShape)}[dim {d}: {Offset}..{Offset + Length})" : ShapeFormat.Of(GlobalShape);

    public bool Equals(TensorSlice? other) =>
        other is not null && GlobalShape.SequenceEqual(other.GlobalShape) && Dim == other.Dim && Offset == other.Offset && Length == other.Length;

    public override int GetHashCode() => HashCode.Combine(GlobalShape.Length, Dim, Offset, Length);
}
