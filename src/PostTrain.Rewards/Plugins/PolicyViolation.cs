// One use of a forbidden API found by CSharpPolicy: the symbol (or construct), why it is forbidden, and where.
namespace PostTrain.Rewards.Plugins;

public sealed record PolicyViolation(string Symbol, string Reason, string File, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}: {Symbol} is not allowed ({Reason})";
}
