// A checkpoint read one tensor at a time: the shapes of every tensor from the headers alone, and Read(name) making a
// new CPU tensor with that one tensor's bytes (read with positioned reads from the open files; FP8 weights with
// 128x128 block scales are dequantised to fp32 on read, and the scales themselves are hidden). Streaming a model in
// through this holds one checkpoint tensor in host memory at a time, never a second copy of the model.
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public sealed class CheckpointTensors : IDisposable
{
    private readonly SafeTensorsCheckpoint _checkpoint;
    private readonly Dictionary<string, string> _scales;

    private CheckpointTensors(SafeTensorsCheckpoint checkpoint)
    {
        _checkpoint = checkpoint;
        _scales = Fp8ScalePairs.Find(checkpoint.Tensors);
        var hidden = _scales.Values.ToHashSet(StringComparer.Ordinal);
        Shapes = checkpoint.Tensors.Values.Where(t => !hidden.Contains(t.Name)).ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
    }

    /// <summary>A safetensors file or checkpoint directory (model.safetensors or an index with shards).</summary>
    public static CheckpointTensors Open(string fileOrDir) => new(SafeTensorsCheckpoint.Open(fileOrDir));

    public string Path => _checkpoint.Path;

    /// <summary>Every readable tensor's shape (FP8 scale tensors left out).</summary>
    public IReadOnlyDictionary<string, long[]> Shapes { get; }

    /// <summary>One tensor as a new CPU tensor (stored dtype; FP8 dequantised to fp32); the caller frees it.</summary>
    public Tensor Read(string name)
    {
        if (!_scales.TryGetValue(name, out var scale)) return _checkpoint.Read(name);
        using var scope = NewDisposeScope();
        return Fp8BlockDequantizer.Dequantize(_checkpoint.Read(name), _checkpoint.Read(scale)).MoveToOuterDisposeScope();
    }

    public void Dispose() => _checkpoint.Dispose();
}
