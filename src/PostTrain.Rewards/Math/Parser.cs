// Recursive-descent parser from tokens to the answer tree. Precedence, lowest first: list (a, b),
// union (\cup), relation chain (= < <= ...), sum (+ - \pm), product (* / \cdot, implicit), unary minus,
// power (right-assoc), postfix (! %), primary. Handles \frac12 and \sqrt2 (one digit per argument, as LaTeX
// does), mixed numbers (2\frac{1}{2} = 5/2), functions without parentheses (\sin 2x, \tan^2 x, \log_2 8),
// |x|, floor/ceil, binomials, matrices and bracket forms (tuples, sets, open/closed intervals).

namespace PostTrain.Rewards.Math;

internal sealed class Parser
{
    private static readonly HashSet<string> Functions =
    [
        "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "asin", "acos", "atan",
        "sinh", "cosh", "tanh", "ln", "log", "lg", "exp", "abs",
    ];

    private static readonly HashSet<string> Greek =
    [
        "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
        "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
        "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega", "ell",
    ];

    private readonly List<Token> _t;
    private readonly Budget _budget;
    private readonly bool _percentIsFraction;
    private int _pos;
    private int _depth;
    private int _absDepth;

    private Parser(List<Token> tokens, Budget budget, bool percentIsFraction)
    {
        _t = tokens;
        _budget = budget;
        _percentIsFraction = percentIsFraction;
    }

    public static bool IsFunctionName(string name) => Functions.Contains(name) || name == "sqrt";

    /// <summary>Parses a whole cleaned answer; throws ParseException when it is not well-formed.</summary>
    public static Node Parse(string text, Budget budget, bool percentIsFraction)
    {
        var p = new Parser(Lexer.Lex(text, budget), budget, percentIsFraction);
        var node = p.ParseList();
        if (p.Peek.Kind != Tok.Eof) throw new ParseException($"unexpected '{p.Peek.Text}'");
        return node;
    }

    private Token Peek => _t[_pos];
    private Token Next() => _t[_pos++];

    private bool Accept(Tok kind)
    {
        if (Peek.Kind != kind) return false;
        _pos++;
        return true;
    }

    private void Expect(Tok kind)
    {
        if (!Accept(kind)) throw new ParseException($"expected {kind}, got '{Peek.Text}'");
    }

    private bool IsCmd(string name) => Peek.Kind == Tok.Cmd && Peek.Text == name;

    private T Nested<T>(Func<T> f)
    {
        _budget.CheckDepth(++_depth);
        try { return f(); }
        finally { _depth--; }
    }

    private Node ParseList()
    {
        var items = new List<Node> { ParseUnion() };
        while (Accept(Tok.Comma) || Accept(Tok.Semi))
        {
            if (Peek.Kind == Tok.Eof) break; // trailing comma
            items.Add(ParseUnion());
        }
        return items.Count == 1 ? items[0] : new Collection(CollectionKind.List, items);
    }

    private Node ParseUnion()
    {
        var first = ParseRelation();
        if (!IsCmd("cup")) return first;
        var parts = new List<Node> { first };
        while (IsCmd("cup"))
        {
            _pos++;
            parts.Add(ParseRelation());
        }
        return new Union(parts);
    }

    private Node ParseRelation()
    {
        var operands = new List<Node> { ParseSum() };
        var ops = new List<RelOp>();
        while (Peek.Kind == Tok.Rel)
        {
            ops.Add(Next().Text switch
            {
                "=" => RelOp.Eq, "<" => RelOp.Lt, "<=" => RelOp.Le, ">" => RelOp.Gt, ">=" => RelOp.Ge, _ => RelOp.Ne,
            });
            operands.Add(ParseSum());
        }
        return ops.Count == 0 ? operands[0] : new Relation(operands, ops);
    }

    private Node ParseSum() => Nested(() =>
    {
        var terms = new List<Node>();
        if (IsCmd("pm")) { _pos++; terms.Add(new Call("pm", [new Num(Rational.Zero, false), ParseProduct()])); }
        else terms.Add(ParseProduct());
        while (true)
        {
            _budget.Tick();
            if (Accept(Tok.Plus)) terms.Add(ParseProduct());
            else if (Accept(Tok.Minus)) terms.Add(Negate(ParseProduct()));
            else if (IsCmd("pm") || IsCmd("mp"))
            {
                var sign = Next().Text == "pm" ? 1 : -1;
                var rhs = ParseProduct();
                var lhs = terms.Count == 1 ? terms[0] : new Sum(terms);
                terms = [new Call("pm", [lhs, sign > 0 ? rhs : Negate(rhs)])];
            }
            else break;
        }
        return terms.Count == 1 ? terms[0] : new Sum(terms);
    });

    internal static Node Negate(Node n) => n is Num num ? new Num(-num.Value, num.Inexact)
        : new Product([new Num(-Rational.One, false), n]);

    private Node ParseProduct() => Nested(() =>
    {
        var factors = new List<Node> { ParseUnary() };
        while (true)
        {
            _budget.Tick();
            if (Accept(Tok.Star)) factors.Add(ParseUnary());
            else if (Accept(Tok.Slash)) factors.Add(new Power(ParseUnary(), new Num(-Rational.One, false)));
            else if (StartsImplicitFactor()) factors.Add(ParsePower());
            else break;
        }
        return factors.Count == 1 ? factors[0] : new Product(factors);
    });

    private bool StartsImplicitFactor(bool stopAtFunction = false) => Peek.Kind switch
    {
        Tok.Ident or Tok.LParen or Tok.Begin => true,
        Tok.Num => _pos > 0 && _t[_pos - 1].Kind == Tok.RParen, // (2)(3) style only
        Tok.Pipe => _absDepth == 0,
        Tok.Cmd => Peek.Text is not ("cup" or "cap" or "pm" or "mp" or "rfloor" or "rceil" or "setminus" or "to")
                   && !(stopAtFunction && Functions.Contains(Peek.Text)),
        _ => false,
    };

    private Node ParseUnary() => Nested(() =>
    {
        if (Accept(Tok.Minus)) return Negate(ParseUnary());
        if (Accept(Tok.Plus)) return ParseUnary();
        return ParsePower();
    });

    private Node ParsePower() => Nested(() =>
    {
        var b = ParsePostfix();
        return Accept(Tok.Caret) ? Postfix(new Power(b, ParseExponent())) : b;
    });

    private Node ParseExponent() => Nested(() =>
    {
        if (Accept(Tok.Minus)) return Negate(ParseExponent());
        if (Accept(Tok.Plus)) return ParseExponent();
        if (Peek.Kind == Tok.LBrace) return ParseBraceGroup();
        var p = ParsePrimary();
        return Accept(Tok.Caret) ? new Power(p, ParseExponent()) : p;
    });

    private Node ParsePostfix() => Postfix(ParsePrimary());

    private Node Postfix(Node p)
    {
        while (true)
        {
            if (Accept(Tok.Bang)) p = new Call("factorial", [p]);
            else if (Accept(Tok.Percent))
                p = _percentIsFraction ? new Product([p, new Num(new Rational(1, 100), false)]) : p;
            else if (Accept(Tok.Prime)) { }
            else return p;
        }
    }

    private Node ParseBraceGroup()
    {
        Expect(Tok.LBrace);
        if (Accept(Tok.RBrace)) throw new ParseException("empty group");
        var inner = ParseList();
        Expect(Tok.RBrace);
        return inner is Collection { Kind: CollectionKind.List } list ? new Collection(CollectionKind.Set, list.Items) : inner;
    }

    private Node ParsePrimary() => Nested(() =>
    {
        var tok = Peek;
        switch (tok.Kind)
        {
            case Tok.Num:
                _pos++;
                var num = new Num(Rational.Parse(tok.Text), tok.Text.Contains('.'));
                if (!num.Inexact && IsCmd("frac")) return MixedNumber(num);
                return num;
            case Tok.Ident:
                _pos++;
                return Symbol(tok.Text);
            case Tok.Cmd:
                _pos++;
                return Command(tok.Text);
            case Tok.LParen:
            case Tok.LBrack:
                return Bracketed();
            case Tok.LBrace:
                return ParseBraceGroup();
            case Tok.SetOpen:
                _pos++;
                var items = new List<Node>();
                if (!Accept(Tok.SetClose))
                {
                    var inner = ParseList();
                    items.AddRange(inner is Collection { Kind: CollectionKind.List } l ? l.Items : [inner]);
                    Expect(Tok.SetClose);
                }
                return new Collection(CollectionKind.Set, items);
            case Tok.Pipe:
                _pos++;
                _absDepth++;
                var body = ParseSum();
                _absDepth--;
                Expect(Tok.Pipe);
                return new Call("abs", [body]);
            case Tok.Begin:
                _pos++;
                return Environment(tok.Text);
            default:
                throw new ParseException($"unexpected '{tok.Text}'");
        }
    });

    private Node MixedNumber(Num whole)
    {
        var save = _pos;
        _pos++; // \frac
        var a = MacroArg();
        var b = MacroArg();
        if (a is Num { Inexact: false } n && b is Num { Inexact: false } d && whole.Value.Sign >= 0 && !d.Value.IsZero)
            return new Num(whole.Value + n.Value / d.Value, false);
        _pos = save;
        return whole; // implicit multiplication with the fraction follows
    }

    private Node Symbol(string name)
    {
        if (Accept(Tok.Under)) name += "_" + SubscriptText();
        else if (name == "e") return new Const(ConstKind.E);
        else if (name == "i") return new Const(ConstKind.I);
        return new Sym(name);
    }

    private string SubscriptText()
    {
        if (Peek.Kind is Tok.Num or Tok.Ident) return Next().Text;
        Expect(Tok.LBrace);
        var parts = new List<string>();
        while (!Accept(Tok.RBrace))
        {
            if (Peek.Kind == Tok.Eof) throw new ParseException("unclosed subscript");
            parts.Add(Next().Text);
        }
        return string.Concat(parts);
    }

    private Node Command(string name)
    {
        switch (name)
        {
            case "pi": return new Const(ConstKind.Pi);
            case "infty": return new Const(ConstKind.Infinity);
            case "imath": case "i": return new Const(ConstKind.I);
            case "e": return new Const(ConstKind.E);
            case "frac":
                var num = MacroArg();
                var den = MacroArg();
                return new Product([num, new Power(den, new Num(-Rational.One, false))]);
            case "binom":
                return new Call("binom", [MacroArg(), MacroArg()]);
            case "sqrt":
                Node? index = null;
                if (Accept(Tok.LBrack))
                {
                    index = ParseSum();
                    Expect(Tok.RBrack);
                }
                var radicand = Peek.Kind == Tok.LParen ? Bracketed() : MacroArg();
                return index is null ? new Call("sqrt", [radicand]) : new Call("root", [radicand, index]);
            case "lfloor":
            case "lceil":
                var inner = ParseSum();
                if (!(Peek.Kind == Tok.Cmd && Peek.Text == (name == "lfloor" ? "rfloor" : "rceil")))
                    throw new ParseException($"unclosed \\{name}");
                _pos++;
                return new Call(name == "lfloor" ? "floor" : "ceil", [inner]);
        }
        if (Functions.Contains(name)) return Function(name);
        if (Greek.Contains(name)) return Symbol(name);
        if (name is "unit") return new Num(Rational.One, false);
        throw new ParseException($"unknown command \\{name}");
    }

    /// <summary>A LaTeX macro argument: {group}, one digit of a number (\frac12), a letter or a command.</summary>
    private Node MacroArg()
    {
        var tok = Peek;
        if (tok.Kind == Tok.LBrace) return ParseBraceGroup();
        if (tok.Kind == Tok.Num)
        {
            if (tok.Text.Length > 1 && char.IsAsciiDigit(tok.Text[0]))
            {
                _t[_pos] = tok with { Text = tok.Text[1..] };
                return new Num(new Rational(tok.Text[0] - '0', 1), false);
            }
            _pos++;
            return new Num(Rational.Parse(tok.Text), tok.Text.Contains('.'));
        }
        if (tok.Kind is Tok.Ident or Tok.Cmd) return ParsePrimary();
        throw new ParseException($"bad macro argument '{tok.Text}'");
    }

    private Node Function(string name)
    {
        name = name switch { "arcsin" => "asin", "arccos" => "acos", "arctan" => "atan", _ => name };
        Node? power = null;
        Node? logBase = name == "lg" ? new Num(new Rational(10, 1), false) : null;
        if (name == "lg") name = "log";
        if (Accept(Tok.Caret))
        {
            var e = ParseExponent();
            if (e is Num { Value: var v } && v == -Rational.One && name is "sin" or "cos" or "tan")
                name = "a" + name;
            else power = e;
        }
        if (name == "log" && Accept(Tok.Under)) logBase = MacroArg();
        Node arg;
        if (Peek.Kind == Tok.LParen)
        {
            _pos++;
            arg = ParseSum();
            Expect(Tok.RParen);
            arg = Postfix(arg);
        }
        else if (Peek.Kind == Tok.LBrace) arg = ParseBraceGroup();
        else
        {
            var factors = new List<Node> { ParseUnary() };
            while (StartsImplicitFactor(stopAtFunction: true) && Peek.Kind != Tok.LParen) factors.Add(ParsePower());
            arg = factors.Count == 1 ? factors[0] : new Product(factors);
        }
        Node call = logBase is null ? new Call(name, [arg]) : new Call("log", [arg, logBase]);
        return power is null ? call : new Power(call, power);
    }

    /// <summary>( ... ) or [ ... ]: grouping, interval (a, b], tuple (a, b, c); "(a, b)" is an open interval
    /// that may also be read as an ordered pair.</summary>
    private Node Bracketed()
    {
        var open = Next().Kind;
        var first = ParseUnion();
        var items = new List<Node> { first };
        while (Accept(Tok.Comma) || Accept(Tok.Semi)) items.Add(ParseUnion());
        var close = Next().Kind;
        if (close is not (Tok.RParen or Tok.RBrack)) throw new ParseException("unclosed bracket");
        if (items.Count == 1)
        {
            if ((open == Tok.LParen) != (close == Tok.RParen)) throw new ParseException("mismatched brackets");
            return first;
        }
        var scalars = items.All(IsScalar);
        if (items.Count == 2 && scalars)
            return new Interval(items[0], items[1], open == Tok.LParen, close == Tok.RParen,
                AlsoTuple: open == Tok.LParen && close == Tok.RParen);
        if ((open == Tok.LParen) != (close == Tok.RParen)) throw new ParseException("mismatched brackets");
        return new Collection(CollectionKind.Tuple, items);
    }

    internal static bool IsScalar(Node n) => n is Num or Sym or Const or Sum or Product or Power or Call;

    private Node Environment(string env)
    {
        if (env is not ("matrix" or "pmatrix" or "bmatrix" or "Bmatrix" or "smallmatrix" or "array"))
            throw new ParseException($"unsupported environment {env}");
        var rows = new List<IReadOnlyList<Node>>();
        var row = new List<Node>();
        while (true)
        {
            _budget.Tick();
            if (Peek.Kind == Tok.End)
            {
                _pos++;
                if (row.Count > 0) rows.Add(row);
                break;
            }
            row.Add(ParseSum());
            if (Accept(Tok.Amp)) continue;
            if (Accept(Tok.RowSep)) { rows.Add(row); row = []; continue; }
            if (Peek.Kind != Tok.End) throw new ParseException("bad matrix cell");
        }
        if (rows.Count == 0 || rows.Any(r => r.Count != rows[0].Count)) throw new ParseException("ragged matrix");
        return new Matrix(rows);
    }
}
