// Runs one piece of untrusted work on a fresh thread with a known stack size and waits for it with a
// deadline. .NET cannot abort a thread, so a deadline miss means the worker process must end: the caller
// reports TimeLimit and exits, and the host starts a fresh worker.
namespace PostTrain.Sandbox.Worker;

internal static class GuardedThread
{
    /// <summary>The work's outcome, or null when it did not finish in time (the thread keeps running).</summary>
    public static CaseOutcome? Run(Func<CaseOutcome> work, int stackBytes, TimeSpan deadline)
    {
        CaseOutcome? outcome = null;
        using var done = new ManualResetEventSlim(false);
        var thread = new Thread(() =>
        {
            try { outcome = work(); }
            catch (Exception e) { outcome = CaseOutcome.FromException(e); }
            finally { done.Set(); }
        }, stackBytes)
        { IsBackground = true, Name = "sandbox-run" };
        thread.Start();
        if (!done.Wait(deadline)) return null;
        thread.Join();
        return outcome ?? new CaseOutcome(PostTrain.Rewards.Sandbox.RunStatus.SandboxError, null, "no outcome");
    }
}
