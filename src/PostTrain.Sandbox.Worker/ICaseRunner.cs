// A loaded program that runs test cases one at a time, on the worker's guarded thread.
namespace PostTrain.Sandbox.Worker;

internal interface ICaseRunner
{
    CaseOutcome Run(PostTrain.Rewards.Sandbox.WorkerCase testCase);

    /// <summary>True when the program left threads, timers or queued work running: the worker must be replaced.</summary>
    bool LeftStateBehind();
}
