// The expression half of the parser (jinja2's parse_tuple .. parse_primary, parse_postfix, parse_filter_expr):
// the conditional `a if b else c`, or, and, not, comparisons (incl. in / not in), + -, ~, * / // %, **, unary -/+,
// literals (strings, numbers, lists, dicts, tuples) and the postfix forms .attr, [index or slice], (call),
// |filter and `is` test.
using System.Globalization;

namespace PostTrain.Data.Templates.Jinja;

public sealed partial class Parser
{
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
