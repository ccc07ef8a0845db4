// Runs untrusted work on a thread with a known stack size and waits for it with a deadline. .NET cannot abort a
// thread, so a deadline miss means the worker process must end: the caller reports TimeLimit and exits, and the host
// starts a fresh worker.
// Run starts a fresh thread per piece of work (C#: a program could change its thread's state, e.g. the current
// culture, and a fresh thread per case leaves no such trace for the next program). GuardedThread.Reused keeps one
// thread for all the work of a worker (JavaScript: Jint gives programs no handle on .NET thread state, and each case
// still gets a fresh engine). That saves a thread start per test case, which with the new thread's culture set-up
// (ICU) was most of a warm JavaScript worker's time: one worker serving 2,000 programs one at a time ran 356-387
// programs/s with a thread per case and 541-808/s with the reused thread (2-core machine, `benchmarks/Sandbox -- 2000 2
// latency`, 1,000 programs per worker in both).
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
            outcome = Guarded(work);
            done.Set();
        }, stackBytes)
        { IsBackground = true, Name = "sandbox-run" };
        thread.Start();
        if (!done.Wait(deadline)) return null;
        thread.Join();
        return outcome ?? NoOutcome;
    }

    private static readonly CaseOutcome NoOutcome = new(PostTrain.Rewards.Sandbox.RunStatus.SandboxError, null, "no outcome");

    private static CaseOutcome Guarded(Func<CaseOutcome> work)
    {
        try { return work(); }
        catch (Exception e) { return CaseOutcome.FromException(e); }
    }

    /// <summary>One long-lived thread that runs the work handed to it one piece at a time. After a deadline miss the
    /// thread is still busy and the instance refuses further work (the worker must exit anyway).</summary>
    internal sealed class Reused
    {
        private readonly SemaphoreSlim _ready = new(0), _done = new(0);
        private Func<CaseOutcome>? _work;
        private CaseOutcome? _outcome;
        private bool _stuck;

        public Reused(int stackBytes)
        {
            StackBytes = stackBytes;
            new Thread(Loop, stackBytes) { IsBackground = true, Name = "sandbox-run" }.Start();
        }

        public int StackBytes { get; }

        /// <summary>The work's outcome, or null when it did not finish in time.</summary>
        public CaseOutcome? Run(Func<CaseOutcome> work, TimeSpan deadline)
        {
            if (_stuck) throw new InvalidOperationException("the guarded thread missed a deadline and is still busy");
            _work = work;
            _outcome = null;
            _ready.Release();
            if (!_done.Wait(deadline))
            {
                _stuck = true;
                return null;
            }
            return _outcome ?? NoOutcome;
        }

        private void Loop()
        {
            while (true)
            {
                _ready.Wait();
                _outcome = Guarded(_work!);
                _work = null;
                _done.Release();
            }
        }
    }
}
