// Variable scopes as jinja2 resolves them: a for-loop iteration and a macro call each get a child scope (so
// `set` inside a loop does not leak out, which is why templates use namespace()); if/with blocks write where
// they are. Lookups walk up to the render variables and the globals.
namespace PostTrain.Data.Templates.Jinja;

public sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);

    public Scope? Parent { get; } = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var s = this; s is not null; s = s.Parent)
            if (s._vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }

    public void Set(string name, object? value) => _vars[name] = value;
}
