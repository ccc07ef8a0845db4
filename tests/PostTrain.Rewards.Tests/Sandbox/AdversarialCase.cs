// One hostile program for the adversarial suites: what it tries, its code ({SENTINEL} is replaced with the
// path of a file it must not be able to change), its tests and the verdicts that count as correctly stopped.
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

public sealed record AdversarialCase(string Name, string Language, string Code, TestSpec Spec, Verdict[] Allowed)
{
    public override string ToString() => Name;

    public static AdversarialCase Js(string name, string code, params Verdict[] allowed) =>
        new(name, "javascript", code, TestSandbox.Function("solve", ("[]", "1")), allowed);

    public static AdversarialCase Cs(string name, string code, params Verdict[] allowed) =>
        new(name, "csharp", code, TestSandbox.Function("solve", ("[]", "1")), allowed);
}
