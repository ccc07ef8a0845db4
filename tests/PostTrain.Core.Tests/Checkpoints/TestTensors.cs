// Builds tensors with exact bytes for checkpoint tests and reads their raw bytes back.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

internal static class TestTensors
{
    public const ScalarType Float8E4M3 = (ScalarType)24;
    public const ScalarType Float8E5M2 = (ScalarType)23;

    /// <summary>A tensor whose memory is exactly <paramref name="bytes"/>.</summary>
    public static Tensor FromBytes(ScalarType dtype, long[] shape, byte[] bytes)
    {
        var t = torch.empty(shape, dtype);
        if (bytes.Length > 0) t.bytes = bytes;
        return t;
    }

    /// <summary>A tensor of random bytes (any bit pattern, NaN payloads included), seeded.</summary>
    public static Tensor RandomBits(ScalarType dtype, long[] shape, int seed)
    {
        var t = torch.empty(shape, dtype);
        var bytes = new byte[t.numel() * t.ElementSize];
        new Random(seed).NextBytes(bytes);
        if (dtype == ScalarType.Bool)
            for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1; // torch bools must be 0 or 1
        if (bytes.Length > 0) t.bytes = bytes;
        return t;
    }

    public static byte[] Bytes(Tensor t) => t.numel() == 0 ? [] : t.contiguous().cpu().bytes.ToArray();
}
