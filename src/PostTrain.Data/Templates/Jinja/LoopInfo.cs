// The `loop` variable inside {% for %}: index (1-based), index0, revindex, revindex0, first, last, length,
// previtem, nextitem, depth, depth0, cycle(...), and loop(...) for recursive loops.
namespace PostTrain.Data.Templates.Jinja;

public sealed class LoopInfo(List<object?> items, int depth, Func<object?, string>? recurse)
{
    public int Index0 { get; set; }
    public Func<object?, string>? Recurse { get; } = recurse;

    public object? Get(string name) => name switch
    {
        "index" => (long)Index0 + 1,
        "index0" => (long)Index0,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "depth" => (long)depth,
        "depth0" => (long)depth - 1,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => Index0 + 1 < items.Count ? items[Index0 + 1] : new Undefined("there is no next item"),
        "cycle" => new PyFunction("cycle", (args, _) =>
            args.Count == 0 ? throw JinjaException.Type("no items for cycling given") : args[Index0 % args.Count]),
        "changed" => new PyFunction("changed", (_, _) => throw JinjaException.Runtime("loop.changed is not supported")),
        _ => new Undefined($"'LoopContext' object has no attribute '{name}'"),
    };
}
