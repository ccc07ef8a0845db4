// Moves raw tensor bytes between files and the memory of contiguous CPU tensors without per-element
// work or whole-file buffers: the tensor is viewed as 1-D and handled in chunks of at most 1 GiB
// (TorchSharp's byte span is int-sized), each chunk read/written straight into/out of tensor memory.
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

internal static class TensorBytes
{
    private const long ChunkBytes = 1L << 30;

    /// <summary>Fills <paramref name="destination"/> (CPU, contiguous) with the file's bytes at <paramref name="fileOffset"/>.</summary>
    public static void ReadInto(SafeFileHandle handle, long fileOffset, Tensor destination, string file, string tensorName)
    {
        RequireCpuContiguous(destination, tensorName);
        long offset = fileOffset;
        ForEachChunk(destination, span =>
        {
            while (span.Length > 0)
            {
                int read = RandomAccess.Read(handle, span, offset);
                if (read == 0)
                    throw new SafeTensorsException(file, tensorName, $"unexpected end of file at byte {offset} while reading data (file truncated while open?)");
                span = span[read..];
                offset += read;
            }
        });
    }

    /// <summary>Appends the bytes of <paramref name="source"/> (CPU, contiguous) to the stream.</summary>
    public static void Write(Stream stream, Tensor source, string tensorName)
    {
        RequireCpuContiguous(source, tensorName);
        ForEachChunk(source, span => stream.Write(span));
    }

    private delegate void SpanAction(Span<byte> span);

    private static void ForEachChunk(Tensor tensor, SpanAction action)
    {
        long count = tensor.numel();
        if (count == 0) return;
        using var flat = tensor.view(-1); // (numel,)
        long chunkElements = Math.Max(1, ChunkBytes / flat.ElementSize);
        for (long start = 0; start < count; start += chunkElements)
        {
            using var part = flat.narrow(0, start, Math.Min(chunkElements, count - start));
            action(part.bytes);
        }
    }

    private static void RequireCpuContiguous(Tensor t, string tensorName)
    {
        if (t.device_type != DeviceType.CPU || !t.is_contiguous())
            throw new InvalidOperationException($"tensor '{tensorName}': raw byte IO needs a contiguous CPU tensor (got {t.device}, contiguous={t.is_contiguous()})");
    }
}
