// Serves one program: loads it, runs each test case on a guarded thread with the CPU backstop moved, and
// streams a frame per case plus an end frame. Returns false when the worker must exit now (a case did not
// stop in time, so its thread is still running).
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Sandbox.Worker;

internal static class WorkerSession
{
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
            var outcome = GuardedThread.Run(() => runner.Run(testCase), limits.StackBytes, deadline);
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
