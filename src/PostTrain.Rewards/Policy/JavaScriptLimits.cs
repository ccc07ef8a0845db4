// The Jint limits of one JavaScript run (LimitedJint). The defaults are the plugin limits, what a rewards/*.js call
// runs under in the trainer process; the sandbox worker derives its own from SandboxLimits (SandboxLimits.JavaScript).
// An infinite loop stops at MaxStatements or Timeout, whichever comes first.
namespace PostTrain.Rewards.Policy;

public sealed record JavaScriptLimits
{
    /// <summary>Wall time of one run (Jint's TimeoutInterval; promises too).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    public int MaxStatements { get; init; } = 10_000_000;

    /// <summary>Bytes the run may allocate in total (Jint's LimitMemory counts allocations, not live bytes).</summary>
    public long MemoryBytes { get; init; } = 64L * 1024 * 1024;

    public int MaxRecursion { get; init; } = 256;

    public uint MaxArraySize { get; init; } = 1_000_000;

    public TimeSpan RegexTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>eval and new Function(code): off for plugins and in the sandbox worker alike, so no plugin can turn a
    /// model's output into code inside the trainer (model-written programs run in the sandbox worker: the `code` reward).</summary>
    public bool AllowEval { get; init; }
}
