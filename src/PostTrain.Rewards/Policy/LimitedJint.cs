// The one factory of limited Jint engines, for reward plugins (in the trainer process) and for untrusted programs
// (in the sandbox worker, which compiles this file in too): no CLR access, wall-time timeout (promises too),
// statement count, allocation budget, recursion depth, native stack guard, array size, regex timeout,
// cancellation, and eval / new Function only when the limits allow it. Jint's limits do not cover everything (huge
// String.repeat/padStart, BigInt powers, Array.join run inside one built-in call), which is why untrusted code runs
// in a worker process with OS limits on top of these.
using Jint;

namespace PostTrain.Rewards.Policy;

public static class LimitedJint
{
    /// <summary>A fresh engine under <paramref name="limits"/>. Use one engine per run and per thread.</summary>
    public static Engine Create(JavaScriptLimits limits, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(limits);
        return new Engine(options =>
        {
            options.Interop.Enabled = false;
            options.Interop.AllowGetType = false;
            options.Interop.AllowSystemReflection = false;
            options.Host.StringCompilationAllowed = limits.AllowEval;
            options.TimeoutInterval(limits.Timeout);
            options.MaxStatements(limits.MaxStatements);
            options.LimitMemory(limits.MemoryBytes);
            options.LimitRecursion(limits.MaxRecursion);
            options.Constraints.StackOverflowGuard = true;
            options.MaxArraySize(limits.MaxArraySize);
            options.RegexTimeoutInterval(limits.RegexTimeout);
            options.Constraints.PromiseTimeout = limits.Timeout;
            options.CancellationToken(cancellationToken);
        });
    }
}
