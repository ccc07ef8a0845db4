// An error while parsing or rendering a Jinja template. Kind mirrors the Python exception jinja2/transformers
// would raise: syntax_error, raise_exception (the template called raise_exception), type_error, undefined_error,
// security_error (the immutable sandbox refused a mutation), runtime_error. Line is the 1-based template line.
namespace PostTrain.Data.Templates.Jinja;

public sealed class JinjaException(string kind, string message, int line = 0) : Exception(line > 0 ? $"line {line}: {message}" : message)
{
    public string Kind { get; } = kind;
    public int Line { get; } = line;
    public string Problem { get; } = message;

    public static JinjaException Type(string message) => new("type_error", message);
    public static JinjaException Undefined(string message) => new("undefined_error", message);
    public static JinjaException Syntax(string message, int line) => new("syntax_error", message, line);
    public static JinjaException Security(string message) => new("security_error", message);
    public static JinjaException Runtime(string message) => new("runtime_error", message);

    /// <summary>The same error with the line it happened on, unless it already has one.</summary>
    public JinjaException AtLine(int line) => Line > 0 || line <= 0 ? this : new JinjaException(Kind, Problem, line);
}
