// One use of a forbidden API found by CSharpApiPolicy: the symbol (or construct), why it is forbidden, and where.
namespace PostTrain.Rewards.Policy;

public sealed record PolicyViolation(string Symbol, string Reason, string File, int Line, int Column)
{
    /// <summary>"file:line:col: symbol is not allowed (reason)", as plugin load errors print it.</summary>
    public override string ToString() => $"{File}:{Line}:{Column}: {Symbol} is not allowed ({Reason})";

    /// <summary>"symbol (line N): reason", as a Forbidden verdict's detail shows it (the program has no file).</summary>
    public string Short() => $"{Symbol} (line {Line}): {Reason}";
}
