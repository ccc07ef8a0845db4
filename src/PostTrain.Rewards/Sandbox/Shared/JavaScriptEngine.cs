// A Jint engine with every limit Jint offers switched on: no CLR access, wall-time timeout, statement count,
// allocation budget, recursion depth, native stack guard, array size, regex timeout, no eval/new Function,
// cancellation. Jint's limits do not cover everything (huge String.repeat/padStart, BigInt powers, Array.join
// run inside one built-in call), so untrusted code also runs inside a worker process with OS limits; this
// factory is the in-process layer, reused by the worker and by reward plugins.
using Jint;

namespace PostTrain.Rewards.Sandbox;

public static class JavaScriptEngine
{
    /// <summary>A fresh engine under <paramref name="limits"/>. Use one engine per run and per thread.</summary>
    public static Engine CreateLimited(SandboxLimits limits, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(limits);
        return new Engine(options =>
        {
            options.Interop.Enabled = false;
            options.Interop.AllowGetType = false;
            options.Interop.AllowSystemReflection = false;
            options.Host.StringCompilationAllowed = false;
            options.TimeoutInterval(limits.TimePerTest);
            options.MaxStatements(limits.MaxStatements);
            options.LimitMemory(limits.JavaScriptAllocationBytes);
            options.LimitRecursion(limits.MaxRecursionDepth);
            options.Constraints.StackOverflowGuard = true;
            options.MaxArraySize(limits.MaxArraySize);
            options.RegexTimeoutInterval(limits.RegexTimeout);
            options.Constraints.PromiseTimeout = limits.TimePerTest;
            options.CancellationToken(cancellationToken);
        });
    }
}
