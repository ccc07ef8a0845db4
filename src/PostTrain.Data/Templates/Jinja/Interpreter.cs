// Runs a parsed template: statements write to an output buffer (a stack, so `set` blocks, macros and call
// blocks can capture), expressions evaluate to Python-like values (Values.cs). The text inside
// {% generation %} blocks of the top-level output is recorded as character spans, which is how transformers
// builds assistant masks (return_assistant_tokens_mask).
using System.Text;

namespace PostTrain.Data.Templates.Jinja;

public sealed partial class Interpreter
{
    private enum Flow { Normal, Break, Continue }

    private readonly List<StringBuilder> _out = [new()];
    private readonly List<(int Start, int End)> _generation = [];

    private Interpreter() { }

    public static (string Text, List<(int Start, int End)> Generation) Run(List<Node> template, Scope globals)
    {
        var it = new Interpreter();
        var scope = new Scope(globals);
        it.Exec(template, scope);
        return (it._out[0].ToString(), it._generation);
    }

    private StringBuilder Out => _out[^1];

    private string Capture(Action body)
    {
        _out.Add(new StringBuilder());
        try { body(); return Out.ToString(); }
        finally { _out.RemoveAt(_out.Count - 1); }
    }

    private Flow Exec(List<Node> nodes, Scope scope)
    {
        foreach (var node in nodes)
        {
            Flow f;
            try { f = Exec(node, scope); }
            catch (JinjaException e) when (e.Line == 0) { throw e.AtLine(node.Line); }
            if (f != Flow.Normal) return f;
        }
        return Flow.Normal;
    }

    private Flow Exec(Node node, Scope scope)
    {
        switch (node)
        {
            case TextNode t: Out.Append(t.Text); return Flow.Normal;
            case OutputNode o: Out.Append(PyStr.Str(Eval(o.Value, scope))); return Flow.Normal;
            case IfNode n:
                foreach (var (test, body) in n.Branches)
                    if (PyOps.Truthy(Eval(test, scope))) return Exec(body, scope);
                return n.Else is null ? Flow.Normal : Exec(n.Else, scope);
            case ForNode f: return For(f, Eval(f.Iter, scope), scope, 1);
            case SetNode s: Assign(s.Target, Eval(s.Value, scope), scope); return Flow.Normal;
            case SetBlockNode sb:
                {
                    object? value = Capture(() => Exec(sb.Body, scope));
                    foreach (var filter in sb.Filters) value = ApplyFilter(filter, value, scope);
                    Assign(sb.Target, value, scope);
                    return Flow.Normal;
                }
            case MacroNode m: scope.Set(m.Name, MakeMacro(m.Name, m.Params, m.Body, scope)); return Flow.Normal;
            case CallBlockNode cb:
                {
                    var caller = MakeMacro("caller", cb.Params, cb.Body, scope);
                    var call = cb.Call with { Kwargs = [.. cb.Call.Kwargs, ("caller", new ConstExpr(caller, cb.Line))] };
                    Out.Append(PyStr.Str(Eval(call, scope)));
                    return Flow.Normal;
                }
            case FilterBlockNode fb:
                {
                    object? value = Capture(() => Exec(fb.Body, scope));
                    foreach (var filter in fb.Filters) value = ApplyFilter(filter, value, scope);
                    Out.Append(PyStr.Str(value));
                    return Flow.Normal;
                }
            case WithNode w:
                {
                    var inner = new Scope(scope);
                    foreach (var (target, value) in w.Assignments) Assign(target, Eval(value, scope), inner);
                    return Exec(w.Body, inner);
                }
            case GenerationNode g:
                {
                    bool top = _out.Count == 1;
                    int start = Out.Length;
                    var flow = Exec(g.Body, scope);
                    if (top) _generation.Add((start, Out.Length));
                    return flow;
                }
            case BreakNode: return Flow.Break;
            case ContinueNode: return Flow.Continue;
            case DoNode d: Eval(d.Value, scope); return Flow.Normal;
        }
        throw JinjaException.Runtime($"unsupported node {node.GetType().Name}");
    }

    private Flow For(ForNode f, object? iterable, Scope scope, int depth)
    {
        var items = PyOps.Iterate(iterable);
        if (f.Filter is not null)
            items = items.Where(item =>
            {
                var s = new Scope(scope);
                Assign(f.Target, item, s);
                return PyOps.Truthy(Eval(f.Filter, s));
            }).ToList();
        Func<object?, string>? recurse = f.Recursive ? x => Capture(() => For(f, x, scope, depth + 1)) : null;
        var loop = new LoopInfo(items, depth, recurse);
        for (int i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            var s = new Scope(scope);
            s.Set("loop", loop);
            Assign(f.Target, items[i], s);
            if (Exec(f.Body, s) == Flow.Break) break;
        }
        if (items.Count == 0 && f.Else is not null) return Exec(f.Else, scope);
        return Flow.Normal;
    }

    private void Assign(Expr target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameExpr n: scope.Set(n.Name, value); return;
            case AttrExpr { Target: NameExpr ns } a:
                if (!scope.TryGet(ns.Name, out var obj) || obj is not Namespace space)
                    throw JinjaException.Runtime($"cannot assign attribute on non-namespace object '{ns.Name}'");
                space.Attributes[a.Name] = value;
                return;
            case TupleExpr t:
                var items = PyOps.Iterate(value);
                if (items.Count != t.Items.Count)
                    throw new JinjaException("value_error", items.Count > t.Items.Count
                        ? $"too many values to unpack (expected {t.Items.Count})"
                        : $"not enough values to unpack (expected {t.Items.Count}, got {items.Count})");
                for (int i = 0; i < items.Count; i++) Assign(t.Items[i], items[i], scope);
                return;
        }
        throw JinjaException.Runtime("cannot assign to this expression");
    }

    /// <summary>A macro as a callable: positional, then keyword arguments, then defaults (evaluated at call time);
    /// extra positional arguments go to `varargs`, extra keywords to `kwargs`; `caller` when called by {% call %}.</summary>
    private PyFunction MakeMacro(string name, List<(string Name, Expr? Default)> ps, List<Node> body, Scope defining) =>
        new(name, (args, kwargs) =>
        {
            var s = new Scope(defining);
            var extraKw = new PyDict();
            var rest = new Dictionary<string, object?>(kwargs);
            for (int i = 0; i < ps.Count; i++)
            {
                var (p, def) = ps[i];
                if (i < args.Count) s.Set(p, args[i]);
                else if (rest.Remove(p, out var kv)) s.Set(p, kv);
                else s.Set(p, def is null ? new Undefined($"parameter '{p}' was not provided") : Eval(def, s));
            }
            if (rest.Remove("caller", out var caller)) s.Set("caller", caller);
            foreach (var (k, v) in rest) extraKw[k] = v;
            s.Set("varargs", new List<object?>(args.Skip(ps.Count)));
            s.Set("kwargs", extraKw);
            return Capture(() => Exec(body, s));
        });
}
