// Compares a gold answer tree with a predicted one, asymmetrically, following math-verify:
// - "x = 5" (an assignment: symbols on the left) compares by its right side when the other side is not an
//   equation; a predicted equation chain "a = b = 5" compares by its last right side when gold is not one.
// - A gold inequality is turned into a set when the prediction is a set ("x > 2" vs "(2, \infty)" is right);
//   a gold set is NOT matched by a predicted inequality unless AllowSetRelationComparison is set.
// - Equations match up to rearrangement and non-zero scaling; inequalities up to positive scaling, or
//   negative scaling with the direction flipped.
// - Sets and bare lists are unordered; tuples are ordered; a set never equals a tuple; "(a, b)" is an open
//   interval that also matches the tuple / bare list a, b in order. A scalar equals the one-element set.
namespace PostTrain.Rewards.Math;

internal sealed class AnswerComparer(MathCheckOptions options, Budget budget)
{
    private readonly ScalarComparer _scalars = new(options, budget);

    public Outcome Compare(Node gold, Node pred, int depth = 0)
    {
        budget.CheckDepth(depth);
        if (gold.Key() == pred.Key()) return Outcome.Equal;

        var goldAssign = IsAssignment(gold);
        var predAssign = IsAssignment(pred);
        var goldEquation = IsEquation(gold);
        var predEquation = IsEquation(pred);
        if (goldAssign) gold = Truncate((Relation)gold);
        if (predAssign) pred = Truncate((Relation)pred);
        if (predEquation && !goldEquation) pred = ((Relation)pred).Operands[^1];
        else if (goldAssign && !predEquation) gold = ((Relation)gold).Operands[^1];

        if (SetAlgebra.IsRelationLike(gold) && SetAlgebra.IsSetLike(pred)) gold = SetAlgebra.RelationToSet(gold) ?? gold;
        if (options.AllowSetRelationComparison && SetAlgebra.IsRelationLike(pred) && SetAlgebra.IsSetLike(gold))
            pred = SetAlgebra.RelationToSet(pred) ?? pred;
        if (gold.Key() == pred.Key()) return Outcome.Equal;

        return (gold, pred) switch
        {
            (Choice g, Choice p) => g.Letter == p.Letter ? Outcome.Equal : Outcome.NotEqual,
            (Choice g, Sym p) => p.Name.Length == 1 && char.ToUpperInvariant(p.Name[0]) == g.Letter ? Outcome.Equal : Outcome.NotEqual,
            (Choice, _) or (_, Choice) => Outcome.NotEqual,
            (Text, _) or (_, Text) => Letters(gold) is { } a && a == Letters(pred) ? Outcome.Equal : Outcome.NotEqual,
            _ when SetAlgebra.IsRelationLike(gold) && SetAlgebra.IsRelationLike(pred) => Relations(gold, pred, depth),
            (Relation, _) or (_, Relation) => Outcome.NotEqual,
            (Matrix g, Matrix p) => Matrices(g, p, depth),
            (Matrix, _) or (_, Matrix) => Outcome.NotEqual,
            _ when IsStructure(gold) || IsStructure(pred) => Structures(gold, pred, depth),
            _ => _scalars.Equal(gold, pred),
        };
    }

    private static bool IsStructure(Node n) => n is Collection or Interval or Union;

    private static bool IsEquation(Node n) => n is Relation r && r.Ops.All(o => o == RelOp.Eq);

    private static bool IsAssignment(Node n) => IsEquation(n) && OnlySymbols(((Relation)n).Operands[0]);

    /// <summary>A left side made of symbols only: x, xy, f(x), NO/BO, |AB|, (p, q).</summary>
    internal static bool OnlySymbols(Node n) => n switch
    {
        Sym => true,
        Product p => p.Factors.All(OnlySymbols),
        Power { Exponent: Num { Value: var e } } pw => e == -Rational.One && OnlySymbols(pw.Base),
        Call { Function: "abs" } c => OnlySymbols(c.Args[0]),
        Interval { AlsoTuple: true } i => OnlySymbols(i.Lo) && OnlySymbols(i.Hi),
        Collection { Kind: CollectionKind.Tuple } t => t.Items.All(OnlySymbols),
        _ => false,
    };

    private static Relation Truncate(Relation r) => r.Ops.Count == 1 ? r : new Relation([r.Operands[0], r.Operands[^1]], [RelOp.Eq]);

    private static string? Letters(Node n) => n switch
    {
        Text t => new string(t.Value.Where(char.IsLetterOrDigit).ToArray()).ToLowerInvariant(),
        Sym s => s.Name.ToLowerInvariant(),
        Const { Kind: ConstKind.E } => "e",
        Const { Kind: ConstKind.I } => "i",
        Product p => p.Factors.Select(Letters).Aggregate((string?)"", (acc, x) => acc is null || x is null ? null : acc + x),
        _ => null,
    };

    private Outcome Matrices(Matrix g, Matrix p, int depth)
    {
        if (g.Rows.Count != p.Rows.Count || g.Rows[0].Count != p.Rows[0].Count) return Outcome.NotEqual;
        var result = Outcome.Equal;
        for (var i = 0; i < g.Rows.Count && result != Outcome.NotEqual; i++)
            for (var j = 0; j < g.Rows[i].Count && result != Outcome.NotEqual; j++)
                result = result.And(Compare(g.Rows[i][j], p.Rows[i][j], depth + 1));
        return result;
    }

    private Outcome Structures(Node gold, Node pred, int depth)
    {
        // a scalar against a one-element set
        if (!IsStructure(gold)) gold = new Collection(CollectionKind.Set, [gold]);
        if (!IsStructure(pred)) pred = new Collection(CollectionKind.Set, [pred]);

        switch (gold, pred)
        {
            case (Interval g, Interval p):
                if (g.LoOpen != p.LoOpen || g.HiOpen != p.HiOpen) return Outcome.NotEqual;
                return Compare(g.Lo, p.Lo, depth + 1).And(Compare(g.Hi, p.Hi, depth + 1));
            case (Union, _) or (_, Union):
                return SetAlgebra.Compare(gold, pred, _scalars, budget);
            case (Interval { AlsoTuple: true } g, Collection { Kind: not CollectionKind.Set } p):
                return Ordered([g.Lo, g.Hi], p.Items, depth);
            case (Collection { Kind: not CollectionKind.Set } g, Interval { AlsoTuple: true } p):
                return Ordered(g.Items, [p.Lo, p.Hi], depth);
            case (Interval, _) or (_, Interval):
                return Outcome.NotEqual;
            case (Collection g, Collection p):
                if (g.Kind == CollectionKind.Set && p.Kind == CollectionKind.Tuple
                    || g.Kind == CollectionKind.Tuple && p.Kind == CollectionKind.Set) return Outcome.NotEqual;
                return g.Kind == CollectionKind.Tuple || p.Kind == CollectionKind.Tuple
                    ? Ordered(g.Items, p.Items, depth) : Unordered(g.Items, p.Items, depth);
            default:
                return Outcome.NotEqual;
        }
    }

    private Outcome Ordered(IReadOnlyList<Node> g, IReadOnlyList<Node> p, int depth)
    {
        if (g.Count != p.Count) return Outcome.NotEqual;
        var result = Outcome.Equal;
        for (var i = 0; i < g.Count && result != Outcome.NotEqual; i++) result = result.And(Compare(g[i], p[i], depth + 1));
        return result;
    }

    /// <summary>Multiset match: every gold item pairs with a distinct equal predicted item.</summary>
    private Outcome Unordered(IReadOnlyList<Node> g, IReadOnlyList<Node> p, int depth)
    {
        var gd = Distinct(g);
        var pd = Distinct(p);
        if (gd.Count != pd.Count) return Outcome.NotEqual;
        var used = new bool[pd.Count];
        var result = Outcome.Equal;
        foreach (var item in gd)
        {
            var found = Outcome.NotEqual;
            for (var j = 0; j < pd.Count && found != Outcome.Equal; j++)
            {
                if (used[j]) continue;
                var o = Compare(item, pd[j], depth + 1);
                if (o == Outcome.Equal) used[j] = true;
                found = found.Or(o);
            }
            result = result.And(found);
            if (result == Outcome.NotEqual) return result;
        }
        return result;
    }

    private static List<Node> Distinct(IReadOnlyList<Node> items) =>
        items.GroupBy(i => i.Key(), StringComparer.Ordinal).Select(grp => grp.First()).ToList();

    private Outcome Relations(Node gold, Node pred, int depth)
    {
        if (gold is Relation g && pred is Relation p)
        {
            if (g.Ops.Count == 1 && p.Ops.Count == 1) return SingleRelation(g, p);
            if (SetAlgebra.RelationToSet(g) is { } gs && SetAlgebra.RelationToSet(p) is { } ps)
                return Compare(gs, ps, depth + 1);
            var gParts = Split(g);
            var pParts = Split(p);
            if (gParts.Count != pParts.Count) return Outcome.NotEqual;
            var forward = Outcome.Equal;
            for (var i = 0; i < gParts.Count && forward != Outcome.NotEqual; i++) forward = forward.And(SingleRelation(gParts[i], pParts[i]));
            if (forward == Outcome.Equal) return forward;
            var backward = Outcome.Equal;
            for (var i = 0; i < gParts.Count && backward != Outcome.NotEqual; i++)
                backward = backward.And(SingleRelation(gParts[i], pParts[^(i + 1)]));
            return forward.Or(backward);
        }
        if (SetAlgebra.RelationToSet(gold) is { } gset && SetAlgebra.RelationToSet(pred) is { } pset)
            return Compare(gset, pset, depth + 1);
        var gi = gold is Collection gc ? gc.Items : [gold];
        var pi = pred is Collection pc ? pc.Items : [pred];
        return Unordered(gi, pi, depth);
    }

    private static List<Relation> Split(Relation r) =>
        Enumerable.Range(0, r.Ops.Count).Select(i => new Relation([r.Operands[i], r.Operands[i + 1]], [r.Ops[i]])).ToList();

    /// <summary>a op b vs c op' d: bring both to "expr op 0" with op in {=, !=, >, >=} and test proportionality.</summary>
    private Outcome SingleRelation(Relation g, Relation p)
    {
        var (gd, gop) = Normal(g);
        var (pd, pop) = Normal(p);
        if (gop != pop) return Outcome.NotEqual;
        var positive = gop is RelOp.Gt or RelOp.Ge;
        return _scalars.Proportional(gd, pd, positive);
    }

    private static (Node Diff, RelOp Op) Normal(Relation r)
    {
        var (a, b, op) = (r.Operands[0], r.Operands[1], r.Ops[0]);
        if (op is RelOp.Lt or RelOp.Le) (a, b, op) = (b, a, SetAlgebra.Flip(op));
        return (new Sum([a, Parser.Negate(b)]), op);
    }
}
