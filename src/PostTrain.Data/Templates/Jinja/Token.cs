// A lexer token: template text, the delimiters of {{ }} and {% %}, or a piece of an expression
// (name, integer, float, string literal, operator). Line is 1-based.
namespace PostTrain.Data.Templates.Jinja;

public enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, Integer, Float, String, Operator, End }

public sealed record Token(TokenKind Kind, string Value, int Line)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;
    public bool IsOp(string op) => Kind == TokenKind.Operator && Value == op;
    public override string ToString() => Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VariableEnd => "'}}'",
        _ => $"'{Value}'",
    };
}
