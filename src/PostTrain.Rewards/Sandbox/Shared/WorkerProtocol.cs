// The messages between the host (SandboxPool) and a worker process. Frames are a 4-byte little-endian length
// followed by that many bytes of UTF-8 JSON; the host sends one WorkerRequest per program, the worker answers
// with a "hello" frame once at start, then one "case" frame per test case and one "end" frame per program.
// Every answer carries the request's random nonce, and travels on a private file descriptor, not the program's
// stdout: untrusted code can neither write to that channel nor know the nonce.
using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PostTrain.Rewards.Sandbox;

/// <summary>How one test case ended inside the worker; the host turns Completed into Accepted or WrongAnswer.</summary>
internal enum RunStatus { Completed, CompileError, RuntimeError, TimeLimit, MemoryLimit, OutputLimit, SandboxError }

/// <summary>One test case as the worker sees it: JSON arguments for a function call, or stdin text. Never the
/// expected answer: comparison happens in the host.</summary>
internal sealed record WorkerCase(string? ArgsJson, string? Stdin);

internal sealed record WorkerRequest(
    string Nonce,
    string Language,          // "javascript" | "csharp"
    string? Entry,            // function name, or null for a stdin/stdout program
    string? Source,           // JavaScript source
    byte[]? Assembly,         // C# script assembly compiled (and policy-checked) by the host
    string? ScriptClass,      // metadata name of the C# script class, e.g. "Submission#0"
    IReadOnlyList<WorkerCase> Cases,
    SandboxLimits Limits);

internal sealed record WorkerFrame(
    string Kind,              // "hello" | "case" | "end"
    string Nonce,
    int Index = -1,
    RunStatus Status = RunStatus.Completed,
    string? Output = null,    // function mode: JSON text of the return value; stdio mode: captured stdout
    string? Error = null,
    bool Recycle = false,     // end frame: the worker wants to be replaced
    IReadOnlyList<string>? Isolation = null); // hello frame: the OS measures that took effect

internal static class WorkerProtocol
{
    public const int MaxFrameBytes = 64 << 20;

    public static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void Write<T>(Stream stream, T message)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(message, Json);
        Span<byte> header = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(header, body.Length);
        stream.Write(header);
        stream.Write(body);
        stream.Flush();
    }

    public static async Task WriteAsync<T>(Stream stream, T message, CancellationToken ct)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(message, Json);
        var frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32LittleEndian(frame, body.Length);
        body.CopyTo(frame, 4);
        await stream.WriteAsync(frame, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Reads one frame; null at a clean end of stream.</summary>
    public static T? Read<T>(Stream stream) where T : class
    {
        var header = new byte[4];
        if (!ReadExactly(stream, header)) return null;
        var body = new byte[CheckLength(BinaryPrimitives.ReadInt32LittleEndian(header))];
        if (!ReadExactly(stream, body)) throw new InvalidDataException("sandbox frame cut short");
        return JsonSerializer.Deserialize<T>(body, Json) ?? throw new InvalidDataException("empty sandbox frame");
    }

    public static async Task<T?> ReadAsync<T>(Stream stream, CancellationToken ct) where T : class
    {
        var header = new byte[4];
        if (!await ReadExactlyAsync(stream, header, ct).ConfigureAwait(false)) return null;
        var body = new byte[CheckLength(BinaryPrimitives.ReadInt32LittleEndian(header))];
        if (!await ReadExactlyAsync(stream, body, ct).ConfigureAwait(false))
            throw new InvalidDataException("sandbox frame cut short");
        return JsonSerializer.Deserialize<T>(body, Json) ?? throw new InvalidDataException("empty sandbox frame");
    }

    private static int CheckLength(int length) => length is >= 0 and <= MaxFrameBytes
        ? length : throw new InvalidDataException($"sandbox frame length {length} out of range");

    private static bool ReadExactly(Stream stream, byte[] buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = stream.Read(buffer, read, buffer.Length - read);
            if (n == 0) return read == 0 ? false : throw new InvalidDataException("sandbox frame cut short");
            read += n;
        }
        return true;
    }

    private static async Task<bool> ReadExactlyAsync(Stream stream, byte[] buffer, CancellationToken ct)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), ct).ConfigureAwait(false);
            if (n == 0) return read == 0 ? false : throw new InvalidDataException("sandbox frame cut short");
            read += n;
        }
        return true;
    }
}
