// Real sets made of intervals and points: the set a one-variable relation describes (x > 2 -> (2, oo),
// 1 <= x < 3 -> [1, 3), x != 0 -> (-oo, 0) U (0, oo), "x < -1 or x > 2" -> a union), and a canonical form
// of unions (sorted, overlapping and touching pieces merged, points inside intervals absorbed) so that
// (-oo, 1) U [1, 2] equals (-oo, 2]. Endpoints must be constants; ordering uses their numeric values.
using System.Numerics;

namespace PostTrain.Rewards.Math;

internal static class SetAlgebra
{
    private static readonly Node NegInf = Parser.Negate(new Const(ConstKind.Infinity));
    private static readonly Node PosInf = new Const(ConstKind.Infinity);

    public static bool IsSetLike(Node n) =>
        n is Interval or Union || n is Collection { Kind: CollectionKind.Set or CollectionKind.List };

    public static bool IsRelationLike(Node n) =>
        n is Relation || n is Collection { Kind: CollectionKind.List } l && l.Items.All(i => i is Relation);

    /// <summary>The set a relation in one variable describes, or null when it is not of that simple form.</summary>
    public static Node? RelationToSet(Node n)
    {
        if (n is Collection { Kind: CollectionKind.List } list)
        {
            var parts = list.Items.Select(RelationToSet).ToList();
            var names = list.Items.Select(i => ScalarComparer.Variables(i) is { Count: 1 } v ? v.First() : null).Distinct().ToList();
            return parts.All(p => p is not null) && names.Count == 1 && names[0] is not null ? new Union(parts!) : null;
        }
        if (n is not Relation r) return null;
        if (r.Operands.Count == 2)
        {
            var (a, b, op) = (r.Operands[0], r.Operands[1], r.Ops[0]);
            if (IsVariable(b) && !IsVariable(a)) (a, b, op) = (b, a, Flip(op));
            if (!IsVariable(a) || ScalarComparer.Variables(b).Count != 0) return null;
            return op switch
            {
                RelOp.Lt => new Interval(NegInf, b, true, true, false),
                RelOp.Le => new Interval(NegInf, b, true, false, false),
                RelOp.Gt => new Interval(b, PosInf, true, true, false),
                RelOp.Ge => new Interval(b, PosInf, false, true, false),
                RelOp.Eq => new Collection(CollectionKind.Set, [b]),
                _ => new Union([new Interval(NegInf, b, true, true, false), new Interval(b, PosInf, true, true, false)]),
            };
        }
        if (r.Operands.Count == 3 && IsVariable(r.Operands[1]) && ScalarComparer.Variables(r.Operands[0]).Count == 0
            && ScalarComparer.Variables(r.Operands[2]).Count == 0)
        {
            var (lo, hi) = (r.Operands[0], r.Operands[2]);
            var (o1, o2) = (r.Ops[0], r.Ops[1]);
            if (o1 is RelOp.Lt or RelOp.Le && o2 is RelOp.Lt or RelOp.Le)
                return new Interval(lo, hi, o1 == RelOp.Lt, o2 == RelOp.Lt, false);
            if (o1 is RelOp.Gt or RelOp.Ge && o2 is RelOp.Gt or RelOp.Ge)
                return new Interval(hi, lo, o2 == RelOp.Gt, o1 == RelOp.Gt, false);
        }
        return null;
    }

    /// <summary>The described quantity: a symbol, or a product of symbols such as f(x) read as f*x.</summary>
    private static bool IsVariable(Node n) => n is Sym || n is Product p && p.Factors.All(f => f is Sym);

    public static RelOp Flip(RelOp op) => op switch
    {
        RelOp.Lt => RelOp.Gt, RelOp.Le => RelOp.Ge, RelOp.Gt => RelOp.Lt, RelOp.Ge => RelOp.Le, _ => op,
    };

    private sealed record Piece(Node Lo, Node Hi, double LoV, double HiV, bool LoOpen, bool HiOpen);

    /// <summary>Canonical pieces of an interval / union / finite set of constants, or null if not possible.</summary>
    private static List<Piece>? Pieces(Node n, Budget budget)
    {
        var raw = new List<Piece>();
        if (!Flatten(n, raw, budget)) return null;
        raw.Sort((a, b) => a.LoV != b.LoV ? a.LoV.CompareTo(b.LoV) : a.LoOpen.CompareTo(b.LoOpen));
        var merged = new List<Piece>();
        foreach (var p in raw)
        {
            budget.Tick();
            if (merged.Count > 0)
            {
                var c = merged[^1];
                var touches = p.LoV < c.HiV || (Same(p.LoV, c.HiV) && (!p.LoOpen || !c.HiOpen));
                if (touches)
                {
                    if (p.HiV > c.HiV || (Same(p.HiV, c.HiV) && !p.HiOpen))
                        merged[^1] = c with { Hi = p.Hi, HiV = p.HiV, HiOpen = p.HiOpen };
                    continue;
                }
            }
            merged.Add(p);
        }
        return merged;
    }

    private static bool Same(double a, double b) =>
        a == b || System.Math.Abs(a - b) <= 1e-9 * System.Math.Max(System.Math.Abs(a), System.Math.Abs(b));

    private static bool Flatten(Node n, List<Piece> into, Budget budget)
    {
        switch (n)
        {
            case Interval i:
                var (lo, hi) = (Value(i.Lo, budget), Value(i.Hi, budget));
                if (lo is null || hi is null) return false;
                into.Add(new Piece(i.Lo, i.Hi, lo.Value, hi.Value, i.LoOpen, i.HiOpen));
                return true;
            case Union u:
                return u.Parts.All(p => Flatten(p, into, budget));
            case Collection { Kind: CollectionKind.Set or CollectionKind.List } c:
                foreach (var item in c.Items)
                {
                    if (Value(item, budget) is not { } v) return false;
                    into.Add(new Piece(item, item, v, v, false, false));
                }
                return true;
            default:
                return false;
        }
    }

    private static double? Value(Node n, Budget budget)
    {
        if (!Parser.IsScalar(n) || ScalarComparer.Variables(n).Count != 0) return null;
        Complex v;
        try { v = NumericEvaluator.Evaluate(n, new Dictionary<string, Complex>(), budget); }
        catch (NotExactException) { return null; }
        return v.Imaginary == 0 && !double.IsNaN(v.Real) ? v.Real : null;
    }

    /// <summary>Compares two real sets piece by piece; endpoints with the scalar comparer.</summary>
    public static Outcome Compare(Node gold, Node pred, ScalarComparer scalars, Budget budget)
    {
        var g = Pieces(gold, budget);
        var p = Pieces(pred, budget);
        if (g is null || p is null) return Outcome.NotEqual;
        if (g.Count != p.Count) return Outcome.NotEqual;
        var result = Outcome.Equal;
        for (var k = 0; k < g.Count; k++)
        {
            if (g[k].LoOpen != p[k].LoOpen || g[k].HiOpen != p[k].HiOpen) return Outcome.NotEqual;
            result = result.And(scalars.Equal(g[k].Lo, p[k].Lo)).And(scalars.Equal(g[k].Hi, p[k].Hi));
            if (result == Outcome.NotEqual) return result;
        }
        return result;
    }
}
