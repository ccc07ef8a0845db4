// The answer tree. Scalars (numbers, symbols, constants, sums, products, powers, function calls) and the
// structures an answer can have around them (relations, sets, tuples, bare lists, intervals, unions,
// matrices, text, multiple-choice letters). Key() prints a canonical form used for structural equality.
using System.Text;

namespace PostTrain.Rewards.Math;

internal abstract record Node
{
    public abstract string Key();
    public override string ToString() => Key();
    protected static string Join(IEnumerable<Node> items, string sep) => string.Join(sep, items.Select(i => i.Key()));
}

/// <summary>A number; Inexact when written with a decimal point (an approximation).</summary>
internal sealed record Num(Rational Value, bool Inexact) : Node
{
    public override string Key() => Value.ToString();
}

internal sealed record Sym(string Name) : Node
{
    public override string Key() => Name;
}

internal enum ConstKind { Pi, E, I, Infinity }

internal sealed record Const(ConstKind Kind) : Node
{
    public override string Key() => Kind switch
    {
        ConstKind.Pi => "pi", ConstKind.E => "E", ConstKind.I => "I", _ => "oo",
    };
}

internal sealed record Sum(IReadOnlyList<Node> Terms) : Node
{
    public override string Key() => "(" + Join(Terms, "+") + ")";
}

internal sealed record Product(IReadOnlyList<Node> Factors) : Node
{
    public override string Key() => "(" + Join(Factors, "*") + ")";
}

internal sealed record Power(Node Base, Node Exponent) : Node
{
    public override string Key() => $"({Base.Key()}^{Exponent.Key()})";
}

/// <summary>A function: sin cos tan sec csc cot asin acos atan sinh cosh tanh ln log exp sqrt root abs
/// floor ceil factorial binom; log has an optional base as second argument, root has the index second.</summary>
internal sealed record Call(string Function, IReadOnlyList<Node> Args) : Node
{
    public override string Key() => $"{Function}[{Join(Args, ",")}]";
}

internal enum RelOp { Eq, Lt, Le, Gt, Ge, Ne }

/// <summary>A relation chain a op1 b op2 c ... (e.g. 1 &lt; x &lt; 3, or x = 2 + 3 = 5).</summary>
internal sealed record Relation(IReadOnlyList<Node> Operands, IReadOnlyList<RelOp> Ops) : Node
{
    public override string Key()
    {
        var sb = new StringBuilder(Operands[0].Key());
        for (var i = 0; i < Ops.Count; i++) sb.Append(OpText(Ops[i])).Append(Operands[i + 1].Key());
        return sb.ToString();
    }

    public static string OpText(RelOp op) => op switch
    {
        RelOp.Eq => "=", RelOp.Lt => "<", RelOp.Le => "<=", RelOp.Gt => ">", RelOp.Ge => ">=", _ => "!=",
    };
}

/// <summary>Set {..}: unordered. Tuple (a,b,...): ordered. List: bare "a, b" or several boxes, compared
/// unordered against sets and lists, ordered against tuples.</summary>
internal enum CollectionKind { Set, Tuple, List }

internal sealed record Collection(CollectionKind Kind, IReadOnlyList<Node> Items) : Node
{
    public override string Key() => Kind switch
    {
        CollectionKind.Set => "{" + Join(Items, ",") + "}",
        CollectionKind.Tuple => "tuple(" + Join(Items, ",") + ")",
        _ => "list(" + Join(Items, ",") + ")",
    };
}

/// <summary>An interval; AlsoTuple when it was written "(a, b)", which may equally be an ordered pair.</summary>
internal sealed record Interval(Node Lo, Node Hi, bool LoOpen, bool HiOpen, bool AlsoTuple) : Node
{
    public override string Key() => (LoOpen ? "(" : "[") + Lo.Key() + "," + Hi.Key() + (HiOpen ? ")" : "]");
}

internal sealed record Union(IReadOnlyList<Node> Parts) : Node
{
    public override string Key() => "U(" + Join(Parts, ",") + ")";
}

internal sealed record Matrix(IReadOnlyList<IReadOnlyList<Node>> Rows) : Node
{
    public override string Key() => "M[" + string.Join(";", Rows.Select(r => Join(r, ","))) + "]";
}

internal sealed record Text(string Value) : Node
{
    public override string Key() => "text:" + Value;
}

internal sealed record Choice(char Letter) : Node
{
    public override string Key() => "choice:" + Letter;
}
