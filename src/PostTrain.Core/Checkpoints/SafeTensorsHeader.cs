// Reads and validates one safetensors header: 8-byte little-endian length N, N bytes of UTF-8 JSON
// ({"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}, ...}, maybe space-padded),
// then the byte buffer. Validation follows the reference (Rust) implementation: header at most
// 100 MB, JSON object starting with '{', known dtypes, byte sizes that match shape x dtype, tensors
// that tile the buffer exactly (no overlap, no hole) and a buffer that ends exactly at end of file.
// Every error names the file and, where one is involved, the tensor.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace PostTrain.Core.Checkpoints;

internal sealed class SafeTensorsHeader
{
    public const long MaxHeaderBytes = 100_000_000;
    public const string MetadataKey = "__metadata__";

    private SafeTensorsHeader(string file, long headerLength, IReadOnlyList<TensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        File = file;
        HeaderLength = headerLength;
        Tensors = tensors;
        ByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Metadata = metadata;
    }

    public string File { get; }

    /// <summary>N: the JSON header's length in bytes (padding included).</summary>
    public long HeaderLength { get; }

    /// <summary>Absolute file offset of the byte buffer (data_offsets are relative to it).</summary>
    public long DataStart => 8 + HeaderLength;

    /// <summary>Tensors in the order of their data in the file.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, TensorInfo> ByName { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static SafeTensorsHeader Read(string file)
    {
        file = Path.GetFullPath(file);
        if (!System.IO.File.Exists(file))
            throw new SafeTensorsException(file, null, "file not found");
        using var handle = System.IO.File.OpenHandle(file);
        return Read(file, handle);
    }

    public static SafeTensorsHeader Read(string file, Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        long fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
            throw new SafeTensorsException(file, null, $"file is {fileLength} bytes, too short to hold the 8-byte header length (truncated?)");

        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(handle, prefix, 0, file);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderBytes)
            throw new SafeTensorsException(file, null, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit (corrupt length prefix or not a safetensors file)");
        if (8 + (long)n > fileLength)
            throw new SafeTensorsException(file, null, $"header length {n} runs past the end of the file ({fileLength} bytes): truncated or corrupt");

        var headerBytes = new byte[n];
        ReadExactly(handle, headerBytes, 8, file);
        string json;
        try
        {
            json = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(headerBytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new SafeTensorsException(file, null, "header is not valid UTF-8", e);
        }
        if (!json.StartsWith('{'))
            throw new SafeTensorsException(file, null, "header does not start with '{' (not a safetensors file or corrupt header)");

        var (tensors, metadata) = Parse(file, json);
        var ordered = ValidateLayout(file, tensors, dataLength: fileLength - 8 - (long)n);
        return new SafeTensorsHeader(file, (long)n, ordered, metadata);
    }

    private static (List<TensorInfo> Tensors, Dictionary<string, string> Metadata) Parse(string file, string json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new SafeTensorsException(file, null, $"header is not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsException(file, null, $"header JSON is a {doc.RootElement.ValueKind}, expected an object");

            var tensors = new List<TensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new SafeTensorsException(file, property.Name, "appears twice in the header");
                if (property.Name == MetadataKey)
                    ParseMetadata(file, property.Value, metadata);
                else
                    tensors.Add(ParseTensor(file, property.Name, property.Value));
            }
            return (tensors, metadata);
        }
    }

    private static void ParseMetadata(string file, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsException(file, null, $"{MetadataKey} is a {value.ValueKind}, expected an object of strings");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsException(file, null, $"{MetadataKey} key '{entry.Name}' is a {entry.Value.ValueKind}, expected a string");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static TensorInfo ParseTensor(string file, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsException(file, name, $"entry is a {value.ValueKind}, expected an object with dtype, shape and data_offsets");

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafeTensorsException(file, name, "missing or non-string 'dtype'");
        string dtype = dtypeElement.GetString()!;
        if (!SafeTensorsDtype.TryFromName(dtype, out _))
            throw new SafeTensorsException(file, name, $"unknown dtype '{dtype}' (known: {SafeTensorsDtype.KnownNames})");

        long[] shape = ReadIntegers(file, name, value, "shape", expectedCount: null);
        long[] offsets = ReadIntegers(file, name, value, "data_offsets", expectedCount: 2);
        return new TensorInfo(name, dtype, shape, offsets[0], offsets[1], file);
    }

    private static long[] ReadIntegers(string file, string name, JsonElement value, string key, int? expectedCount)
    {
        if (!value.TryGetProperty(key, out var array) || array.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsException(file, name, $"missing or non-array '{key}'");
        var result = new long[array.GetArrayLength()];
        if (expectedCount is int count && result.Length != count)
            throw new SafeTensorsException(file, name, $"'{key}' has {result.Length} entries, expected {count}");
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v) || v < 0)
                throw new SafeTensorsException(file, name, $"'{key}' entry {i} ({item.GetRawText()}) is not a non-negative integer");
            result[i++] = v;
        }
        return result;
    }

    private static List<TensorInfo> ValidateLayout(string file, List<TensorInfo> tensors, long dataLength)
    {
        var ordered = tensors.OrderBy(t => t.Start).ThenBy(t => t.End).ToList();
        long expectedStart = 0;
        TensorInfo? previous = null;
        foreach (var t in ordered)
        {
            if (t.End < t.Start)
                throw new SafeTensorsException(file, t.Name, $"data_offsets [{t.Start}, {t.End}] end before they start");
            long needed = ByteLength(file, t);
            if (t.End - t.Start != needed)
                throw new SafeTensorsException(file, t.Name,
                    $"data_offsets [{t.Start}, {t.End}] span {t.End - t.Start} bytes but dtype {t.Dtype} with shape {t.ShapeText} needs {needed}");
            if (t.Start < expectedStart)
                throw new SafeTensorsException(file, t.Name,
                    $"data_offsets [{t.Start}, {t.End}] overlap tensor '{previous!.Name}' at [{previous.Start}, {previous.End}]");
            if (t.Start > expectedStart)
                throw new SafeTensorsException(file, t.Name,
                    $"data_offsets [{t.Start}, {t.End}] leave a hole: bytes [{expectedStart}, {t.Start}) of the buffer belong to no tensor");
            if (t.End > dataLength)
                throw new SafeTensorsException(file, t.Name,
                    $"data_offsets [{t.Start}, {t.End}] run past the end of the data ({dataLength} bytes after the header): file truncated?");
            expectedStart = t.End;
            previous = t;
        }
        if (expectedStart != dataLength)
            throw new SafeTensorsException(file, null,
                $"{dataLength - expectedStart} bytes after the last tensor's data (header accounts for {expectedStart} of {dataLength} buffer bytes)");
        return ordered;
    }

    private static long ByteLength(string file, TensorInfo t)
    {
        try
        {
            long elements = 1;
            foreach (long d in t.Shape) elements = checked(elements * d);
            return checked(elements * SafeTensorsDtype.FromName(t.Dtype).Size);
        }
        catch (OverflowException)
        {
            throw new SafeTensorsException(file, t.Name, $"shape {t.ShapeText} is too large (byte size overflows)");
        }
    }

    private static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset, string file)
    {
        while (buffer.Length > 0)
        {
            int read = RandomAccess.Read(handle, buffer, offset);
            if (read == 0)
                throw new SafeTensorsException(file, null, $"unexpected end of file at byte {offset} (truncated?)");
            buffer = buffer[read..];
            offset += read;
        }
    }
}
