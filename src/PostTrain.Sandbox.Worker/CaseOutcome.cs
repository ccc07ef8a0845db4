// How one test case ended inside the worker, and the mapping from exceptions (Jint's limit exceptions, .NET's
// OutOfMemoryException, our output cap) to run statuses.
using Jint.Runtime;
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Sandbox.Worker;

/// <summary>The program does not parse.</summary>
internal sealed class ProgramCompileException(string message) : Exception(message);

internal sealed record CaseOutcome(RunStatus Status, string? Output, string? Error)
{
    /// <summary>True when the case hit a limit: the worker is replaced after this program.</summary>
    public bool HitLimit => Status is RunStatus.TimeLimit or RunStatus.MemoryLimit or RunStatus.OutputLimit
        or RunStatus.SandboxError;

    public static CaseOutcome Completed(string output) => new(RunStatus.Completed, output, null);

    public static CaseOutcome FromException(Exception e)
    {
        var inner = e is System.Reflection.TargetInvocationException { InnerException: { } t } ? t : e;
        if (inner is AggregateException { InnerExceptions.Count: 1 } agg) inner = agg.InnerExceptions[0];
        return inner switch
        {
            OutputLimitExceededException => new(RunStatus.OutputLimit, null, inner.Message),
            OutOfMemoryException or InsufficientMemoryException => new(RunStatus.MemoryLimit, null, "out of memory"),
            MemoryLimitExceededException => new(RunStatus.MemoryLimit, null, inner.Message),
            TimeoutException or StatementsCountOverflowException or ExecutionCanceledException
                or System.Text.RegularExpressions.RegexMatchTimeoutException => new(RunStatus.TimeLimit, null, inner.Message),
            RecursionDepthOverflowException => new(RunStatus.RuntimeError, null, "recursion limit: " + inner.Message),
            InsufficientExecutionStackException => new(RunStatus.RuntimeError, null, "stack overflow: " + inner.Message),
            JavaScriptException js => new(RunStatus.RuntimeError, null, Trim(js.Message)),
            Acornima.ParseErrorException or ProgramCompileException => new(RunStatus.CompileError, null, Trim(inner.Message)),
            _ => new(RunStatus.RuntimeError, null, Trim($"{inner.GetType().FullName}: {inner.Message}")),
        };
    }

    private static string Trim(string text) => text.Length <= 2000 ? text : text[..2000] + "...";
}
