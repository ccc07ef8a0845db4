// Tokens to a statement tree, following jinja2's grammar (parser.py): statements if/elif/else, for (with an
// `if` filter, else, recursive), set (expression, namespace attribute, tuple targets, block form), macro,
// call, filter, with, generation, break, continue, do. Expressions are parsed in Parser.Expressions.cs.

namespace PostTrain.Data.Templates.Jinja;

public sealed partial class Parser
{
    private readonly List<Token> _t;
    private int _i;

    private Parser(List<Token> tokens) => _t = tokens;

    public static List<Node> Parse(string source) => new Parser(Lexer.Tokenize(source)).Template();

    private Token Cur => _t[_i];
    private Token Next() => _t[_i++];
    private Token PeekAt(int k) => _t[Math.Min(_i + k, _t.Count - 1)];

    private JinjaException Error(string message) => JinjaException.Syntax(message, Cur.Line);

    private Token Expect(TokenKind kind, string? value = null)
    {
        if (Cur.Kind != kind || (value is not null && Cur.Value != value))
            throw Error($"expected {(value is null ? kind.ToString() : $"'{value}'")}, got {Cur}");
        return Next();
    }

    private bool SkipOp(string op)
    {
        if (!Cur.IsOp(op)) return false;
        _i++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!Cur.IsName(name)) return false;
        _i++;
        return true;
    }

    private List<Node> Template()
    {
        var body = Body([]);
        if (Cur.Kind != TokenKind.End) throw Error($"unexpected tag '{PeekAt(1).Value}'");
        return body;
    }

    /// <summary>Nodes up to (not including) a {% tag %} whose name is one of <paramref name="endNames"/>.</summary>
    private List<Node> Body(string[] endNames)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var tok = Cur;
            switch (tok.Kind)
            {
                case TokenKind.End:
                    if (endNames.Length > 0) throw Error($"unexpected end of template; expected one of {string.Join(", ", endNames.Select(n => $"'{n}'"))}");
                    return nodes;
                case TokenKind.Text:
                    _i++;
                    nodes.Add(new TextNode(tok.Value, tok.Line));
                    break;
                case TokenKind.VariableBegin:
                    _i++;
                    var e = Tuple();
                    Expect(TokenKind.VariableEnd);
                    nodes.Add(new OutputNode(e, tok.Line));
                    break;
                case TokenKind.BlockBegin:
                    var name = PeekAt(1);
                    if (name.Kind == TokenKind.Name && endNames.Contains(name.Value)) return nodes;
                    _i++;
                    nodes.Add(Statement());
                    break;
                default:
                    throw Error($"unexpected {tok}");
            }
        }
    }

    private void EndTag(string name)
    {
        Expect(TokenKind.BlockBegin);
        Expect(TokenKind.Name, name);
        Expect(TokenKind.BlockEnd);
    }

    private Node Statement()
    {
        var tok = Cur;
        if (tok.Kind != TokenKind.Name) throw Error("tag name expected");
        _i++;
        switch (tok.Value)
        {
            case "if": return If(tok.Line);
            case "for": return For(tok.Line);
            case "set": return Set(tok.Line);
            case "macro": return Macro(tok.Line);
            case "call": return Call(tok.Line);
            case "filter":
                {
                    var filters = FilterChain(null);
                    Expect(TokenKind.BlockEnd);
                    var body = Body(["endfilter"]);
                    EndTag("endfilter");
                    return new FilterBlockNode(filters, body, tok.Line);
                }
            case "with":
                {
                    var assigns = new List<(Expr, Expr)>();
                    while (Cur.Kind != TokenKind.BlockEnd)
                    {
                        if (assigns.Count > 0) Expect(TokenKind.Operator, ",");
                        var target = AssignTarget();
                        Expect(TokenKind.Operator, "=");
                        assigns.Add((target, Expression()));
                    }
                    Expect(TokenKind.BlockEnd);
                    var body = Body(["endwith"]);
                    EndTag("endwith");
                    return new WithNode(assigns, body, tok.Line);
                }
            case "generation":
                {
                    Expect(TokenKind.BlockEnd);
                    var body = Body(["endgeneration"]);
                    EndTag("endgeneration");
                    return new GenerationNode(body, tok.Line);
                }
            case "break": Expect(TokenKind.BlockEnd); return new BreakNode(tok.Line);
            case "continue": Expect(TokenKind.BlockEnd); return new ContinueNode(tok.Line);
            case "do":
                {
                    var e = Tuple();
                    Expect(TokenKind.BlockEnd);
                    return new DoNode(e, tok.Line);
                }
        }
        _i--;
        throw Error($"unknown tag '{tok.Value}'");
    }

    private Node If(int line)
    {
        var branches = new List<(Expr, List<Node>)>();
        List<Node>? otherwise = null;
        var test = Tuple(withCondExpr: true);
        while (true)
        {
            Expect(TokenKind.BlockEnd);
            var body = Body(["elif", "else", "endif"]);
            branches.Add((test, body));
            Expect(TokenKind.BlockBegin);
            var tag = Next();
            if (tag.Value == "elif") { test = Tuple(withCondExpr: true); continue; }
            if (tag.Value == "else")
            {
                Expect(TokenKind.BlockEnd);
                otherwise = Body(["endif"]);
                EndTag("endif");
            }
            else Expect(TokenKind.BlockEnd);
            return new IfNode(branches, otherwise, line);
        }
    }

    private Node For(int line)
    {
        var target = AssignTarget(endName: "in");
        Expect(TokenKind.Name, "in");
        var iter = Tuple(withCondExpr: false, endNames: ["recursive", "if"]);
        Expr? filter = null;
        if (SkipName("if")) filter = Expression();
        bool recursive = SkipName("recursive");
        Expect(TokenKind.BlockEnd);
        var body = Body(["endfor", "else"]);
        List<Node>? otherwise = null;
        Expect(TokenKind.BlockBegin);
        if (Next().Value == "else")
        {
            Expect(TokenKind.BlockEnd);
            otherwise = Body(["endfor"]);
            EndTag("endfor");
        }
        else Expect(TokenKind.BlockEnd);
        return new ForNode(target, iter, filter, body, otherwise, recursive, line);
    }

    private Node Set(int line)
    {
        var target = AssignTarget(withNamespace: true);
        if (SkipOp("="))
        {
            var value = Tuple();
            Expect(TokenKind.BlockEnd);
            return new SetNode(target, value, line);
        }
        var filters = SkipOp("|") ? FilterChain(null) : [];
        Expect(TokenKind.BlockEnd);
        var body = Body(["endset"]);
        EndTag("endset");
        return new SetBlockNode(target, body, filters, line);
    }

    private List<(string, Expr?)> Signature()
    {
        var ps = new List<(string, Expr?)>();
        Expect(TokenKind.Operator, "(");
        while (!Cur.IsOp(")"))
        {
            if (ps.Count > 0) Expect(TokenKind.Operator, ",");
            if (Cur.IsOp(")")) break;
            var name = Expect(TokenKind.Name).Value;
            Expr? def = SkipOp("=") ? Expression() : null;
            ps.Add((name, def));
        }
        Expect(TokenKind.Operator, ")");
        return ps;
    }

    private Node Macro(int line)
    {
        var name = Expect(TokenKind.Name).Value;
        var ps = Signature();
        Expect(TokenKind.BlockEnd);
        var body = Body(["endmacro"]);
        EndTag("endmacro");
        return new MacroNode(name, ps, body, line);
    }

    private Node Call(int line)
    {
        var ps = Cur.IsOp("(") ? Signature() : [];
        var call = Expression() as CallExpr ?? throw Error("expected a call after {% call %}");
        Expect(TokenKind.BlockEnd);
        var body = Body(["endcall"]);
        EndTag("endcall");
        return new CallBlockNode(call, ps, body, line);
    }

    /// <summary>A name, a namespace attribute (ns.x, with <paramref name="withNamespace"/>) or a tuple of names.</summary>
    private Expr AssignTarget(string? endName = null, bool withNamespace = false)
    {
        int line = Cur.Line;
        if (withNamespace && Cur.Kind == TokenKind.Name && PeekAt(1).IsOp("."))
        {
            var ns = Next().Value;
            _i++;
            return new AttrExpr(new NameExpr(ns, line), Expect(TokenKind.Name).Value, line);
        }
        var items = new List<Expr>();
        bool paren = SkipOp("(");
        while (true)
        {
            items.Add(new NameExpr(Expect(TokenKind.Name).Value, line));
            if (!SkipOp(",")) break;
            if (Cur.Kind != TokenKind.Name) break;
        }
        if (paren) Expect(TokenKind.Operator, ")");
        return items.Count == 1 && !paren ? items[0] : new TupleExpr(items, line);
    }
}
