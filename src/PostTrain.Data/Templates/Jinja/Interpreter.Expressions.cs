// Expression evaluation with jinja2's lookup rules: `a.b` tries the attribute (methods of str/dict/list,
// namespace attributes, loop fields) before the item, `a[b]` the item before the attribute; a miss is
// Undefined, but any lookup on Undefined itself raises undefined_error. `and`/`or` short-circuit and return
// an operand, as Python does; `~` joins str() of both sides.
namespace PostTrain.Data.Templates.Jinja;

public sealed partial class Interpreter
{
    private object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case ConstExpr c: return c.Value;
            case NameExpr n: return scope.TryGet(n.Name, out var v) ? v : Undefined.Named(n.Name);
            case TupleExpr t: return new PyTuple([.. t.Items.Select(x => Eval(x, scope))]);
            case ListExpr l: return l.Items.Select(x => Eval(x, scope)).ToList();
            case DictExpr d:
                {
                    var dict = new PyDict();
                    foreach (var (k, val) in d.Items) dict[Eval(k, scope) ?? throw JinjaException.Type("None as a dict key is not supported")] = Eval(val, scope);
                    return dict;
                }
            case AttrExpr a: return GetAttr(Eval(a.Target, scope), a.Name);
            case ItemExpr i:
                {
                    var target = Eval(i.Target, scope);
                    if (i.Index is SliceExpr sl)
                        return Slicing.Slice(target, Opt(sl.Start, scope), Opt(sl.Stop, scope), Opt(sl.Step, scope));
                    return GetItem(target, Eval(i.Index, scope));
                }
            case SliceExpr: throw JinjaException.Runtime("a slice outside of []");
            case CallExpr c: return Call(c, scope);
            case FilterExpr f: return ApplyFilter(f, Eval(f.Target!, scope), scope);
            case TestExpr t:
                {
                    var (args, kwargs) = Arguments(t.Args, t.Kwargs, scope);
                    bool r = Tests.Apply(t.Name, Eval(t.Target, scope), args, kwargs);
                    return t.Negated ? !r : r;
                }
            case UnaryExpr u:
                {
                    var x = Eval(u.Operand, scope);
                    return u.Op switch
                    {
                        "not" => !PyOps.Truthy(x),
                        "-" => PyOps.Negate(x),
                        _ => x is Undefined un ? throw un.Error() : PyOps.IsNumber(x) ? x : throw JinjaException.Type($"bad operand type for unary +: '{PyTypes.Name(x)}'"),
                    };
                }
            case BinaryExpr b:
                {
                    var left = Eval(b.Left, scope);
                    switch (b.Op)
                    {
                        case "and": return PyOps.Truthy(left) ? Eval(b.Right, scope) : left;
                        case "or": return PyOps.Truthy(left) ? left : Eval(b.Right, scope);
                        case "~": return PyStr.Str(left) + PyStr.Str(Eval(b.Right, scope));
                        default: return PyOps.Arith(b.Op, left, Eval(b.Right, scope));
                    }
                }
            case CompareExpr c:
                {
                    var left = Eval(c.First, scope);
                    foreach (var (op, rightExpr) in c.Rest)
                    {
                        var right = Eval(rightExpr, scope);
                        bool ok = op switch
                        {
                            "==" => PyOps.Equal(left, right),
                            "!=" => !PyOps.Equal(left, right),
                            "<" => PyOps.Compare(left, right, op) < 0,
                            "<=" => PyOps.Compare(left, right, op) <= 0,
                            ">" => PyOps.Compare(left, right, op) > 0,
                            ">=" => PyOps.Compare(left, right, op) >= 0,
                            "in" => PyOps.Contains(right, left),
                            "notin" => !PyOps.Contains(right, left),
                            _ => throw JinjaException.Runtime($"unknown comparison {op}"),
                        };
                        if (!ok) return false;
                        left = right;
                    }
                    return true;
                }
            case CondExpr c:
                if (PyOps.Truthy(Eval(c.Test, scope))) return Eval(c.Then, scope);
                return c.Else is null ? new Undefined("the inline if-expression evaluated to false and no else section was defined") : Eval(c.Else, scope);
        }
        throw JinjaException.Runtime($"unsupported expression {e.GetType().Name}");
    }

    private object? Opt(Expr? e, Scope scope) => e is null ? null : Eval(e, scope);

    private (List<object?>, Dictionary<string, object?>) Arguments(List<Expr> args, List<(string Name, Expr Value)> kwargs, Scope scope)
    {
        var a = args.Select(x => Eval(x, scope)).ToList();
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in kwargs) k[name] = Eval(value, scope);
        return (a, k);
    }

    private object? Call(CallExpr c, Scope scope)
    {
        var fn = Eval(c.Function, scope);
        var (args, kwargs) = Arguments(c.Args, c.Kwargs, scope);
        if (c.StarArgs is not null) args.AddRange(PyOps.Iterate(Eval(c.StarArgs, scope)));
        if (c.StarKwargs is not null)
        {
            if (Eval(c.StarKwargs, scope) is not PyDict d) throw JinjaException.Type("argument after ** must be a mapping");
            foreach (var (k, v) in d) kwargs[PyStr.Str(k)] = v;
        }
        return fn switch
        {
            PyFunction f => f.Invoke(args, kwargs),
            LoopInfo { Recurse: { } r } => args.Count == 1 ? r(args[0]) : throw JinjaException.Type("loop() takes exactly one argument"),
            Undefined u => throw u.Error(),
            _ => throw JinjaException.Type($"'{PyTypes.Name(fn)}' object is not callable"),
        };
    }

    private object? ApplyFilter(FilterExpr f, object? value, Scope scope)
    {
        var (args, kwargs) = Arguments(f.Args, f.Kwargs, scope);
        return Filters.Apply(f.Name, value, args, kwargs);
    }

    /// <summary>jinja2's environment.getattr: the attribute, else the item of that name, else Undefined.</summary>
    public static object? GetAttr(object? obj, string name)
    {
        if (obj is Undefined u) throw u.Error();
        if (name.StartsWith('_')) return new Undefined($"access to attribute '{name}' of '{PyTypes.Name(obj)}' object is unsafe");
        switch (obj)
        {
            case Namespace ns: return ns.Attributes.TryGetValue(name, out var v) ? v : new Undefined($"'Namespace' object has no attribute '{name}'");
            case LoopInfo loop: return loop.Get(name);
        }
        if (Methods.Bind(obj, name) is { } method) return method;
        if (obj is PyDict d && d.TryGetValue(name, out var item)) return item;
        return new Undefined($"'{PyTypes.Name(obj)} object' has no attribute '{name}'");
    }

    /// <summary>jinja2's environment.getitem: the item, else (for a string key) the attribute, else Undefined.</summary>
    public static object? GetItem(object? obj, object? key)
    {
        if (obj is Undefined u) throw u.Error();
        switch (obj)
        {
            case PyDict d when key is not null && d.TryGetValue(key, out var v): return v;
            case List<object?> l when key is long or bool:
                {
                    long i = key is bool b ? (b ? 1 : 0) : (long)key;
                    if (i < 0) i += l.Count;
                    return i >= 0 && i < l.Count ? l[(int)i] : new Undefined($"list index {key} out of range");
                }
            case PyTuple t when key is long i2:
                {
                    long i = i2 < 0 ? i2 + t.Items.Length : i2;
                    return i >= 0 && i < t.Items.Length ? t.Items[i] : new Undefined($"tuple index {key} out of range");
                }
            case string s when key is long i3:
                {
                    var cps = PyStr.CodePoints(s);
                    long i = i3 < 0 ? i3 + cps.Length : i3;
                    return i >= 0 && i < cps.Length ? cps[i] : new Undefined($"string index {key} out of range");
                }
        }
        if (key is string name) return GetAttr(obj, name);
        return new Undefined($"'{PyTypes.Name(obj)} object' has no item {PyStr.Repr(key)}");
    }
}
