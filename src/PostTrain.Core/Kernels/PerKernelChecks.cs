// What the kernel groups checked one kernel at a time (decode, train) share: running each kernel's check on its own, and
// the group's decision from the failures (all on; on except the failing ones, which keep the plain ops; or off).
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace PostTrain.Core.Kernels;

internal static class PerKernelChecks
{
    /// <summary>Runs checks[i] for kernel names[i], each in its own dispose scope, a failure in one not stopping the
    /// others: the failing kernels, each with its first failing case (an exception from the kernel counts as one).</summary>
    public static Dictionary<string, string> RunEach(string[] names, Func<string?>[] checks)
    {
        var failures = new Dictionary<string, string>();
        for (int i = 0; i < checks.Length; i++)
        {
            using var scope = NewDisposeScope();
            string? failure;
            try { failure = checks[i](); }
            catch (Exception e) when (e is InvalidOperationException or ExternalException or ArgumentException)
            {
                failure = $"{names[i]}: {e.Message.Split('\n')[0]}";
            }
            if (failure is not null) failures[names[i]] = failure;
        }
        return failures;
    }

    /// <summary>The group's kernels and status line from its per-kernel failures: <paramref name="native"/> when none
    /// failed, <paramref name="partial"/>(the failing names) when some did, null (the plain ops) when all of the
    /// <paramref name="count"/> kernels did.</summary>
    public static (T? Kernels, string Status) Decide<T>(T native, IReadOnlyDictionary<string, string> failures, int count,
        Func<IReadOnlySet<string>, T> partial) where T : class
    {
        if (failures.Count == 0) return (native, "on (self-check against the plain ops passed)");
        var why = string.Join("; ", failures.Select(f => f.Value));
        if (failures.Count == count) return (null, "off: self-check failed: " + why);
        return (partial(failures.Keys.ToHashSet()), $"on except {string.Join(", ", failures.Keys)} (plain ops there; self-check failed: {why})");
    }

    /// <summary>Null when got has want's dtype and agrees within <paramref name="tol"/> of want's scale, else what differed.</summary>
    public static string? Differs(Tensor got, Tensor want, double tol) =>
        got.dtype != want.dtype ? $"dtype {got.dtype} vs {want.dtype}" : FusedKernels.Differs(got, want, tol);
}
