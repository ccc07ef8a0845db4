// What to run and how it is scored, and what came out: the sandbox's public records.
namespace PostTrain.Rewards.Sandbox;

/// <summary>A program and its tests. <see cref="Language"/>: "javascript" (or "js") | "csharp" (or "cs", "c#").</summary>
public sealed record CodeRequest(string Language, string Code, TestSpec Tests);

/// <summary>One test's verdict. <see cref="Output"/> is what the program produced (JSON of the return value, or
/// stdout), when it produced anything; <see cref="Detail"/> says why a test failed.</summary>
public sealed record TestVerdict(int Index, Verdict Verdict, string? Detail = null, string? Output = null);

/// <summary>The verdicts in test order, the score (share accepted, or 0/1 when the spec asks for all-or-nothing)
/// and a program-level error (compile error, forbidden API, sandbox failure) when there was one.</summary>
public sealed record ExecutionResult(IReadOnlyList<TestVerdict> Tests, double Score, string? Error)
{
    public int Passed => Tests.Count(t => t.Verdict == Verdict.Accepted);

    internal static ExecutionResult Same(TestSpec spec, Verdict verdict, string error) =>
        new(spec.Cases.Select((_, i) => new TestVerdict(i, verdict, error)).ToArray(), 0, error);
}
