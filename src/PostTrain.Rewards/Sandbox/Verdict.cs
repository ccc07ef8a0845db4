// The verdict of one test case, as judges (isolate, judge0, SandboxFusion) report it.
namespace PostTrain.Rewards.Sandbox;

public enum Verdict
{
    Accepted,
    WrongAnswer,
    TimeLimit,
    MemoryLimit,
    RuntimeError,
    CompileError,
    OutputLimit,
    /// <summary>The program uses an API or construct the sandbox policy rejects (C# allow-list, #r, unsafe).</summary>
    Forbidden,
    /// <summary>The sandbox itself failed (worker could not start, protocol broken or forged).</summary>
    SandboxError,
}
