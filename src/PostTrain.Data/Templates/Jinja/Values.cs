// The values a template sees, as Python objects would behave in jinja2:
//   None = null, bool, long (int), double (float), string (str), List<object?> (list), PyTuple (tuple),
//   PyDict (dict, insertion-ordered), Namespace (namespace()), PyFunction (globals, bound methods, macros),
//   Undefined (a missing variable, attribute or item: prints as "", is falsy, iterates as empty, and raises
//   an undefined_error when an attribute, item or arithmetic is taken of it).
namespace PostTrain.Data.Templates.Jinja;

public sealed class Undefined(string hint)
{
    public string Hint { get; } = hint;
    public static Undefined Named(string name) => new($"'{name}' is undefined");
    public JinjaException Error() => JinjaException.Undefined(Hint);
}

public sealed record PyTuple(object?[] Items);

/// <summary>An insertion-ordered dictionary with Python's key equality (1 == 1.0 == True).</summary>
public sealed class PyDict() : OrderedDictionary<object, object?>(PyKeyComparer.Instance);

public sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static PyKeyComparer Instance { get; } = new();
    public new bool Equals(object? a, object? b) => PyOps.Equal(a, b);
    public int GetHashCode(object o) => o switch
    {
        bool b => b ? 1 : 0,
        long l => l.GetHashCode(),
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => ((long)d).GetHashCode(),
        PyTuple t => t.Items.Aggregate(17, (h, x) => h * 31 + (x is null ? 0 : GetHashCode(x))),
        _ => o.GetHashCode(),
    };
}

/// <summary>namespace(...): the one mutable object templates may assign attributes on ({% set ns.x = ... %}).</summary>
public sealed class Namespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>A callable: positional arguments and keyword arguments in, a value out.</summary>
public sealed class PyFunction(string name, Func<List<object?>, Dictionary<string, object?>, object?> call)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => call(args, kwargs);
}

/// <summary>Python's and jinja2's type names, for error messages.</summary>
public static class PyTypes
{
    public static string Name(object? v) => v switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        PyTuple => "tuple",
        PyDict => "dict",
        Namespace => "Namespace",
        PyFunction => "function",
        Undefined => "Undefined",
        LoopInfo => "LoopContext",
        _ => v.GetType().Name,
    };
}
