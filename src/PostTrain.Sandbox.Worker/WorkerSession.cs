// Serves one program: loads it, runs each test case on a guarded thread with the CPU backstop moved (JavaScript: the
// worker's one reused thread; C#: a fresh thread per case, see GuardedThread), and
// streams a frame per case plus an end frame. Returns false when the worker must exit now (a case did not
// stop in time, so its thread is still running).
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Sandbox.Worker;

internal static class WorkerSession
{
    private static GuardedThread.Reused? _reused;

    /// <summary>The worker's one reused case thread (JavaScript), made on first use with the request's stack size.</summary>
    private static GuardedThread.Reused ReusedThread(int stackBytes) =>
        _reused is { } r && r.StackBytes == stackBytes ? r : _reused = new GuardedThread.Reused(stackBytes);

    public static bool Serve(WorkerRequest request, Stream output)
    {
        var limits = request.Limits;
        ICaseRunner runner;
        try
        {
            runner = request.Language switch
            {
                "javascript" => new JavaScriptRunner(request),
                "csharp" => new CSharpRunner(request),
                _ => throw new InvalidDataException($"unknown language '{request.Language}'"),
            };
        }
        catch (Exception e)
        {
            var load = CaseOutcome.FromException(e);
            for (var i = 0; i < request.Cases.Count; i++)
                WorkerProtocol.Write(output, new WorkerFrame("case", request.Nonce, i, load.Status, null, load.Error));
            WorkerProtocol.Write(output, new WorkerFrame("end", request.Nonce, Recycle: load.HitLimit));
            return true;
        }

        var recycle = false;
        // Jint stops itself at TimePerTest; the guard fires a little later for built-ins that ignore it and for C#.
        var deadline = limits.TimePerTest + TimeSpan.FromMilliseconds(200);
        for (var i = 0; i < request.Cases.Count; i++)
        {
            var testCase = request.Cases[i];
            WorkerIsolation.SetCpuBudget(deadline.TotalSeconds + 1);
            var outcome = request.Language == "javascript"
                ? ReusedThread(limits.StackBytes).Run(() => runner.Run(testCase), deadline)
                : GuardedThread.Run(() => runner.Run(testCase), limits.StackBytes, deadline);
            if (outcome is null)
            {
                WorkerProtocol.Write(output, new WorkerFrame("case", request.Nonce, i, RunStatus.TimeLimit, null,
                    $"did not finish in {limits.TimePerTest.TotalMilliseconds:0} ms"));
                WorkerProtocol.Write(output, new WorkerFrame("end", request.Nonce, Recycle: true));
                return false;
            }
            WorkerProtocol.Write(output, new WorkerFrame("case", request.Nonce, i, outcome.Status, outcome.Output, outcome.Error));
            recycle |= outcome.HitLimit;
        }
        recycle |= runner.LeftStateBehind();
        (runner as IDisposable)?.Dispose();
        WorkerProtocol.Write(output, new WorkerFrame("end", request.Nonce, Recycle: recycle));
        return true;
    }
}
