// The parsed template: statements (Node) and expressions (Expr), one record per jinja2 construct used by
// chat templates. Line numbers let errors point into the template.
namespace PostTrain.Data.Templates.Jinja;

public abstract record Node(int Line);
public sealed record TextNode(string Text, int Line) : Node(Line);
public sealed record OutputNode(Expr Value, int Line) : Node(Line);
public sealed record IfNode(List<(Expr Test, List<Node> Body)> Branches, List<Node>? Else, int Line) : Node(Line);
public sealed record ForNode(Expr Target, Expr Iter, Expr? Filter, List<Node> Body, List<Node>? Else, bool Recursive, int Line) : Node(Line);
public sealed record SetNode(Expr Target, Expr Value, int Line) : Node(Line);
public sealed record SetBlockNode(Expr Target, List<Node> Body, List<FilterExpr> Filters, int Line) : Node(Line);
public sealed record MacroNode(string Name, List<(string Name, Expr? Default)> Params, List<Node> Body, int Line) : Node(Line);
public sealed record CallBlockNode(CallExpr Call, List<(string Name, Expr? Default)> Params, List<Node> Body, int Line) : Node(Line);
public sealed record FilterBlockNode(List<FilterExpr> Filters, List<Node> Body, int Line) : Node(Line);
public sealed record WithNode(List<(Expr Target, Expr Value)> Assignments, List<Node> Body, int Line) : Node(Line);
public sealed record GenerationNode(List<Node> Body, int Line) : Node(Line);
public sealed record BreakNode(int Line) : Node(Line);
public sealed record ContinueNode(int Line) : Node(Line);
public sealed record DoNode(Expr Value, int Line) : Node(Line);

public abstract record Expr(int Line);
public sealed record ConstExpr(object? Value, int Line) : Expr(Line);
public sealed record NameExpr(string Name, int Line) : Expr(Line);
public sealed record TupleExpr(List<Expr> Items, int Line) : Expr(Line);
public sealed record ListExpr(List<Expr> Items, int Line) : Expr(Line);
public sealed record DictExpr(List<(Expr Key, Expr Value)> Items, int Line) : Expr(Line);
public sealed record AttrExpr(Expr Target, string Name, int Line) : Expr(Line);
public sealed record ItemExpr(Expr Target, Expr Index, int Line) : Expr(Line);
public sealed record SliceExpr(Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr(Line);
public sealed record CallExpr(Expr Function, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, Expr? StarArgs, Expr? StarKwargs, int Line) : Expr(Line);
public sealed record FilterExpr(Expr? Target, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);
public sealed record TestExpr(Expr Target, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, bool Negated, int Line) : Expr(Line);
public sealed record UnaryExpr(string Op, Expr Operand, int Line) : Expr(Line);
public sealed record BinaryExpr(string Op, Expr Left, Expr Right, int Line) : Expr(Line);
public sealed record CompareExpr(Expr First, List<(string Op, Expr Right)> Rest, int Line) : Expr(Line);
public sealed record CondExpr(Expr Test, Expr Then, Expr? Else, int Line) : Expr(Line);
