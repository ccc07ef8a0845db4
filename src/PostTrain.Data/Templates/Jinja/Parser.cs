// Tokens to a statement tree, following jinja2's grammar (parser.py): statements if/elif/else, for (with an
// `if` filter, else, recursive), set (expression, namespace attribute, tuple targets, block form), macro,
// call, filter, with, generation, break, continue, do; expressions from the conditional `a if b else c`
// down through or, and, not, comparisons (incl. in / not in), + -, ~, * / // %, **, unary -/+, and the
// postfix forms .attr, [index or slice], (call), |filter and `is` test.
using System.Globalization;

namespace PostTrain.Data.Templates.Jinja;

public sealed class Parser
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
        var filters = Cur.IsOp("|") ? FilterChain(null) : [];
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

    // ---- expressions ----

    private bool AtTupleEnd(string[]? endNames) =>
        Cur.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd or TokenKind.End || Cur.IsOp(")") ||
        (endNames is not null && Cur.Kind == TokenKind.Name && endNames.Contains(Cur.Value));

    private Expr Tuple(bool withCondExpr = true, string[]? endNames = null, bool explicitParens = false)
    {
        int line = Cur.Line;
        var items = new List<Expr>();
        bool comma = false;
        while (true)
        {
            if (items.Count > 0)
            {
                if (!SkipOp(",")) break;
                comma = true;
            }
            if (AtTupleEnd(endNames)) break;
            items.Add(withCondExpr ? Expression() : Or());
        }
        if (!comma)
        {
            if (items.Count == 1) return items[0];
            if (!explicitParens) throw Error($"expected an expression, got {Cur}");
        }
        return new TupleExpr(items, line);
    }

    public Expr Expression() => CondExpression();

    private Expr CondExpression()
    {
        var expr = Or();
        while (Cur.IsName("if"))
        {
            int line = Next().Line;
            var test = Or();
            Expr? otherwise = SkipName("else") ? CondExpression() : null;
            expr = new CondExpr(test, expr, otherwise, line);
        }
        return expr;
    }

    private Expr Or()
    {
        var left = And();
        while (Cur.IsName("or")) { int line = Next().Line; left = new BinaryExpr("or", left, And(), line); }
        return left;
    }

    private Expr And()
    {
        var left = Not();
        while (Cur.IsName("and")) { int line = Next().Line; left = new BinaryExpr("and", left, Not(), line); }
        return left;
    }

    private Expr Not()
    {
        if (Cur.IsName("not")) { int line = Next().Line; return new UnaryExpr("not", Not(), line); }
        return Compare();
    }

    private static readonly string[] CompareOps = ["==", "!=", "<", "<=", ">", ">="];

    private Expr Compare()
    {
        int line = Cur.Line;
        var first = Math1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Cur.Kind == TokenKind.Operator && CompareOps.Contains(Cur.Value)) rest.Add((Next().Value, Math1()));
            else if (SkipName("in")) rest.Add(("in", Math1()));
            else if (Cur.IsName("not") && PeekAt(1).IsName("in")) { _i += 2; rest.Add(("notin", Math1())); }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, line);
    }

    private Expr Math1()
    {
        var left = Concat();
        while (Cur.IsOp("+") || Cur.IsOp("-")) { var op = Next(); left = new BinaryExpr(op.Value, left, Concat(), op.Line); }
        return left;
    }

    private Expr Concat()
    {
        var left = Math2();
        while (Cur.IsOp("~")) { var op = Next(); left = new BinaryExpr("~", left, Math2(), op.Line); }
        return left;
    }

    private Expr Math2()
    {
        var left = Pow();
        while (Cur.IsOp("*") || Cur.IsOp("/") || Cur.IsOp("//") || Cur.IsOp("%")) { var op = Next(); left = new BinaryExpr(op.Value, left, Pow(), op.Line); }
        return left;
    }

    private Expr Pow()
    {
        var left = Unary();
        while (Cur.IsOp("**")) { var op = Next(); left = new BinaryExpr("**", left, Unary(), op.Line); }
        return left;
    }

    private Expr Unary(bool withFilter = true)
    {
        Expr node;
        if (Cur.IsOp("-") || Cur.IsOp("+")) { var op = Next(); node = new UnaryExpr(op.Value, Unary(false), op.Line); }
        else node = Postfix(Primary());
        return withFilter ? FilterTail(node) : node;
    }

    private Expr Primary()
    {
        var tok = Next();
        switch (tok.Kind)
        {
            case TokenKind.Name:
                return tok.Value switch
                {
                    "true" or "True" => new ConstExpr(true, tok.Line),
                    "false" or "False" => new ConstExpr(false, tok.Line),
                    "none" or "None" => new ConstExpr(null, tok.Line),
                    _ => new NameExpr(tok.Value, tok.Line),
                };
            case TokenKind.String:
                {
                    var s = tok.Value;
                    while (Cur.Kind == TokenKind.String) s += Next().Value;
                    return new ConstExpr(s, tok.Line);
                }
            case TokenKind.Integer: return new ConstExpr(long.Parse(tok.Value, CultureInfo.InvariantCulture), tok.Line);
            case TokenKind.Float: return new ConstExpr(double.Parse(tok.Value, CultureInfo.InvariantCulture), tok.Line);
            case TokenKind.Operator when tok.Value == "(":
                {
                    var e = Tuple(explicitParens: true);
                    Expect(TokenKind.Operator, ")");
                    return e;
                }
            case TokenKind.Operator when tok.Value == "[":
                {
                    var items = new List<Expr>();
                    while (!Cur.IsOp("]"))
                    {
                        if (items.Count > 0) Expect(TokenKind.Operator, ",");
                        if (Cur.IsOp("]")) break;
                        items.Add(Expression());
                    }
                    Expect(TokenKind.Operator, "]");
                    return new ListExpr(items, tok.Line);
                }
            case TokenKind.Operator when tok.Value == "{":
                {
                    var items = new List<(Expr, Expr)>();
                    while (!Cur.IsOp("}"))
                    {
                        if (items.Count > 0) Expect(TokenKind.Operator, ",");
                        if (Cur.IsOp("}")) break;
                        var k = Expression();
                        Expect(TokenKind.Operator, ":");
                        items.Add((k, Expression()));
                    }
                    Expect(TokenKind.Operator, "}");
                    return new DictExpr(items, tok.Line);
                }
        }
        _i--;
        throw Error($"unexpected {tok}");
    }

    private Expr Postfix(Expr node)
    {
        while (true)
        {
            if (Cur.IsOp("."))
            {
                var dot = Next();
                var attr = Next();
                node = attr.Kind switch
                {
                    TokenKind.Name => new AttrExpr(node, attr.Value, dot.Line),
                    TokenKind.Integer => new ItemExpr(node, new ConstExpr(long.Parse(attr.Value, CultureInfo.InvariantCulture), dot.Line), dot.Line),
                    _ => throw JinjaException.Syntax($"expected a name after '.', got {attr}", attr.Line),
                };
            }
            else if (Cur.IsOp("["))
            {
                int line = Next().Line;
                var args = new List<Expr>();
                while (!Cur.IsOp("]"))
                {
                    if (args.Count > 0) Expect(TokenKind.Operator, ",");
                    args.Add(Subscript());
                }
                Expect(TokenKind.Operator, "]");
                node = new ItemExpr(node, args.Count == 1 ? args[0] : new TupleExpr(args, line), line);
            }
            else if (Cur.IsOp("(")) node = CallArgs(node);
            else return node;
        }
    }

    private Expr Subscript()
    {
        int line = Cur.Line;
        Expr? start = null;
        if (!Cur.IsOp(":"))
        {
            start = Expression();
            if (!Cur.IsOp(":")) return start;
        }
        Next();
        Expr? stop = Cur.IsOp("]") || Cur.IsOp(",") || Cur.IsOp(":") ? null : Expression();
        Expr? step = null;
        if (SkipOp(":") && !(Cur.IsOp("]") || Cur.IsOp(","))) step = Expression();
        return new SliceExpr(start, stop, step, line);
    }

    private (List<Expr> Args, List<(string, Expr)> Kwargs, Expr? Star, Expr? StarStar) Arguments()
    {
        Expect(TokenKind.Operator, "(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        Expr? star = null, starStar = null;
        bool first = true;
        while (!Cur.IsOp(")"))
        {
            if (!first) { Expect(TokenKind.Operator, ","); if (Cur.IsOp(")")) break; }
            first = false;
            if (SkipOp("**")) starStar = Expression();
            else if (SkipOp("*")) star = Expression();
            else if (Cur.Kind == TokenKind.Name && PeekAt(1).IsOp("="))
            {
                var name = Next().Value;
                _i++;
                kwargs.Add((name, Expression()));
            }
            else args.Add(Expression());
        }
        Expect(TokenKind.Operator, ")");
        return (args, kwargs, star, starStar);
    }

    private Expr CallArgs(Expr fn)
    {
        int line = Cur.Line;
        var (args, kwargs, star, starStar) = Arguments();
        return new CallExpr(fn, args, kwargs, star, starStar, line);
    }

    private List<FilterExpr> FilterChain(Expr? target)
    {
        var list = new List<FilterExpr>();
        do list.Add(Filter(target)); while (SkipOp("|"));
        return list;
    }

    private FilterExpr Filter(Expr? target)
    {
        int line = Cur.Line;
        var name = Expect(TokenKind.Name).Value;
        while (Cur.IsOp(".")) { _i++; name += "." + Expect(TokenKind.Name).Value; }
        if (!Cur.IsOp("(")) return new FilterExpr(target, name, [], [], line);
        var (args, kwargs, _, _) = Arguments();
        return new FilterExpr(target, name, args, kwargs, line);
    }

    private Expr FilterTail(Expr node)
    {
        while (true)
        {
            if (SkipOp("|")) node = Filter(node);
            else if (Cur.IsName("is"))
            {
                int line = Next().Line;
                bool negated = SkipName("not");
                var name = Expect(TokenKind.Name).Value;
                while (Cur.IsOp(".")) { _i++; name += "." + Expect(TokenKind.Name).Value; }
                var args = new List<Expr>();
                var kwargs = new List<(string, Expr)>();
                if (Cur.IsOp("(")) (args, kwargs, _, _) = Arguments();
                else if ((Cur.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || Cur.IsOp("[") || Cur.IsOp("{"))
                         && !(Cur.IsName("else") || Cur.IsName("or") || Cur.IsName("and")))
                {
                    if (Cur.IsName("is")) throw Error("you cannot chain multiple tests with is");
                    args.Add(Postfix(Primary()));
                }
                node = new TestExpr(node, name, args, kwargs, negated, line);
            }
            else if (Cur.IsOp("(")) node = CallArgs(node);
            else return node;
        }
    }
}
