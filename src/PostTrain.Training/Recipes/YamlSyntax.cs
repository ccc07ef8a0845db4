// Loads YAML text into a YamlStream and turns every syntax error into a YamlSyntaxError with a line and column.
// YamlDotNet reports most errors as a YamlException with a position, but an unclosed flow collection followed by
// more keys ("betas: [0.9, 0.95" and a key on the next line) makes its scanner throw a bare
// InvalidOperationException without one. The parser is wrapped so that the position of the still-open '[' or '{'
// is known when that happens; the error names it (the place to fix) and the line the scanner stopped at.
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace PostTrain.Training.Recipes;

/// <summary>A YAML syntax error at a 1-based <see cref="Line"/> and <see cref="Column"/>.</summary>
public sealed class YamlSyntaxError(long line, long column, string message) : Exception(message)
{
    public long Line { get; } = line;
    public long Column { get; } = column;
}

public static class YamlSyntax
{
    /// <summary>Parses <paramref name="yaml"/>; throws <see cref="YamlSyntaxError"/> on malformed text.</summary>
    public static YamlStream Load(string yaml)
    {
        var scanner = new Scanner(new StringReader(yaml), skipComments: true);
        var parser = new FlowTrackingParser(new Parser(scanner));
        var stream = new YamlStream();
        try
        {
            stream.Load(parser);
            return stream;
        }
        catch (YamlException e)
        {
            throw new YamlSyntaxError(e.Start.Line, e.Start.Column, Innermost(e).Message);
        }
        catch (InvalidOperationException) when (parser.OpenFlow is { } open)
        {
            var kind = open.IsSequence ? "'[' (a list)" : "'{' (a mapping)";
            throw new YamlSyntaxError(open.Start.Line, open.Start.Column,
                $"{kind} opened here is not closed (the scanner stopped at line {scanner.CurrentPosition.Line}); add the closing {(open.IsSequence ? "']'" : "'}'")}");
        }
        catch (InvalidOperationException e)
        {
            throw new YamlSyntaxError(scanner.CurrentPosition.Line, scanner.CurrentPosition.Column, $"malformed YAML ({e.Message})");
        }
    }

    private static Exception Innermost(Exception e) => e.InnerException is YamlException inner ? Innermost(inner) : e.InnerException ?? e;

    /// <summary>Passes events through and remembers where the innermost unclosed flow collection starts.</summary>
    private sealed class FlowTrackingParser(IParser inner) : IParser
    {
        private readonly Stack<(Mark Start, bool IsSequence)> _open = new();

        public (Mark Start, bool IsSequence)? OpenFlow => _open.Count > 0 ? _open.Peek() : null;

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            if (!inner.MoveNext()) return false;
            switch (inner.Current)
            {
                case SequenceStart { Style: SequenceStyle.Flow } s: _open.Push((s.Start, true)); break;
                case MappingStart { Style: MappingStyle.Flow } m: _open.Push((m.Start, false)); break;
                // No block collection can start inside a flow one, so an end while a flow is open closes that flow.
                case SequenceEnd or MappingEnd when _open.Count > 0: _open.Pop(); break;
            }
            return true;
        }
    }
}
