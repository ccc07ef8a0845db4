// The limits every JavaScript plugin call runs under (Jint constraints). An infinite loop stops at MaxStatements or
// Timeout, whichever comes first; the runner's own per-call timeout also cancels the engine.
namespace PostTrain.Rewards.Plugins;

public sealed record JsLimits
{
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    public int MaxStatements { get; init; } = 10_000_000;
    public long MemoryBytes { get; init; } = 64L * 1024 * 1024;
    public int MaxRecursion { get; init; } = 256;
    public uint MaxArraySize { get; init; } = 1_000_000;
    public TimeSpan RegexTimeout { get; init; } = TimeSpan.FromSeconds(1);
}
