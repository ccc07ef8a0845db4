// The program's stdout (and stderr) inside the worker: an in-memory writer that keeps at most N characters.
// Past the cap it remembers that it overflowed and throws, so a program that catches the exception and
// carries on still ends as OutputLimit.
using System.Text;

namespace PostTrain.Sandbox.Worker;

internal sealed class OutputLimitExceededException(int limit)
    : Exception($"output exceeded {limit} characters");

internal sealed class CappedWriter(int maxChars) : TextWriter
{
    private readonly StringBuilder _text = new();
    private readonly Lock _gate = new();

    public bool Exceeded { get; private set; }

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value) => Append(new ReadOnlySpan<char>(in value));

    public override void Write(string? value) => Append(value.AsSpan());

    public override void Write(char[] buffer, int index, int count) => Append(buffer.AsSpan(index, count));

    public override void Write(ReadOnlySpan<char> buffer) => Append(buffer);

    public override string ToString()
    {
        lock (_gate) return _text.ToString();
    }

    private void Append(ReadOnlySpan<char> chars)
    {
        lock (_gate)
        {
            if (Exceeded || _text.Length + chars.Length > maxChars)
            {
                Exceeded = true;
                throw new OutputLimitExceededException(maxChars);
            }
            _text.Append(chars);
        }
    }
}
