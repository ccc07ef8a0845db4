// One tensor's entry in a safetensors header: what the file says about it, before any data is read.
// Start/End are the header's data_offsets, i.e. relative to the byte buffer that begins right after
// the 8-byte length and the JSON header; File is the full path of the file that holds the tensor.
namespace PostTrain.Core.Checkpoints;

public sealed record TensorInfo(string Name, string Dtype, long[] Shape, long Start, long End, string File)
{
    /// <summary>Number of elements (1 for a scalar, shape []).</summary>
    public long NumElements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Size of the tensor's data in bytes.</summary>
    public long ByteLength => End - Start;

    /// <summary>The shape as "[a, b]" for messages.</summary>
    public string ShapeText => ShapeFormat.Of(Shape);
}
