// jinja2's tests (`x is name(args)`), with Python's isinstance semantics: `number` includes bool, `integer`
// and `float` do not; a string, list, tuple, dict and Undefined are iterable; `sequence` is anything with
// len() and indexing (str, list, tuple, dict).
namespace PostTrain.Data.Templates.Jinja;

public static class Tests
{
    public static bool Apply(string name, object? v, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? A(int i, string n) => Methods.Arg(args, kwargs, i, n) is var a && (i < args.Count || kwargs.ContainsKey(n))
            ? a : throw JinjaException.Type($"test '{name}' needs argument '{n}'");
        return name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "integer" => v is long,
            "float" => v is double,
            "number" => v is long or double or bool,
            "string" => v is string,
            "mapping" => v is PyDict,
            "iterable" => v is string or List<object?> or PyTuple or PyDict or Undefined,
            "sequence" => v is string or List<object?> or PyTuple or PyDict,
            "callable" => v is PyFunction or Undefined or LoopInfo { Recurse: not null },
            "sameas" => ReferenceEquals(v, A(0, "other")) || (v is null && A(0, "other") is null) || (v is bool b && A(0, "other") is bool b2 && b == b2),
            "escaped" => false,
            "in" => PyOps.Contains(A(0, "seq"), v),
            "==" or "eq" or "equalto" => PyOps.Equal(v, A(0, "other")),
            "!=" or "ne" => !PyOps.Equal(v, A(0, "other")),
            ">" or "gt" or "greaterthan" => PyOps.Compare(v, A(0, "other"), ">") > 0,
            ">=" or "ge" => PyOps.Compare(v, A(0, "other"), ">=") >= 0,
            "<" or "lt" or "lessthan" => PyOps.Compare(v, A(0, "other"), "<") < 0,
            "<=" or "le" => PyOps.Compare(v, A(0, "other"), "<=") <= 0,
            "odd" => Int(v, name) % 2 != 0,
            "even" => Int(v, name) % 2 == 0,
            "divisibleby" => Int(v, name) % Int(A(0, "num"), name) == 0,
            "lower" => v is string s && s.Any(char.IsLetter) && !s.Any(char.IsUpper),
            "upper" => v is string s2 && s2.Any(char.IsLetter) && !s2.Any(char.IsLower),
            _ => throw new JinjaException("template_assertion_error", $"No test named '{name}'."),
        };
    }

    private static long Int(object? v, string test) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        Undefined u => throw u.Error(),
        _ => throw JinjaException.Type($"test '{test}' needs an integer, got {PyTypes.Name(v)}"),
    };
}
