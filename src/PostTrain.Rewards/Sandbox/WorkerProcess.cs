// One running worker as the host sees it: starts it (waiting for its hello), sends one program, reads the frames
// back with a deadline per frame, checks every frame's nonce, and kills the process (and deletes its scratch
// folder) when it is done, stuck, crashed or caught forging. A worker that dies mid-program is classified from
// its exit status and stderr (SIGXCPU = time, "Stack overflow" = runtime error, out of memory = memory).
using System.Diagnostics;
using System.Text;

namespace PostTrain.Rewards.Sandbox;

/// <summary>What came back for one program: a frame per case that finished, whether the end frame arrived, and
/// (when not) the verdict for the case that was running when the worker stopped.</summary>
internal sealed record WorkerReport(IReadOnlyList<WorkerFrame> Cases, bool Ended, bool Recycle, Verdict? StopVerdict, string? StopReason);

internal sealed class WorkerProcess : IDisposable
{
    private const int StderrCap = 8 * 1024;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);

    private readonly Process _process;
    private readonly string _scratch;
    private readonly StringBuilder _stderr = new();
    private bool _killedByHost;
    private int _disposed;

    private WorkerProcess(Process process, string scratch, string language)
    {
        _process = process;
        _scratch = scratch;
        Language = language;
    }

    public string Language { get; }

    public int Runs { get; private set; }

    /// <summary>Set by the pool once it has started this worker's successor (the worker is near its last program).</summary>
    public bool SuccessorStarted { get; set; }

    public IReadOnlyList<string> Isolation { get; private set; } = [];

    public bool HasExited => _process.HasExited;

    public static async Task<WorkerProcess> StartAsync(string language, SandboxLimits limits, string? scratchRoot, CancellationToken ct)
    {
        var scratch = WorkerLauncher.CreateScratch(scratchRoot);
        Process process;
        try
        {
            process = Process.Start(WorkerLauncher.StartInfo(language, limits, scratch))
                ?? throw new InvalidOperationException("sandbox worker did not start");
        }
        catch
        {
            TryDelete(scratch);
            throw;
        }
        var worker = new WorkerProcess(process, scratch, language);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (worker._stderr)
                if (worker._stderr.Length < StderrCap) worker._stderr.AppendLine(e.Data);
        };
        process.BeginErrorReadLine();
        try
        {
            // A cold start (runtime, Jint's JIT) takes ~1 s idle but over 30 s on a 2-core machine at load 20: this is
            // a hang guard for a worker that never answers, not a speed limit.
            var hello = await worker.ReadFrameAsync(StartTimeout + limits.HostGrace, ct).ConfigureAwait(false);
            if (hello is not { Kind: "hello" })
                throw new InvalidOperationException("sandbox worker did not say hello: " + worker.Stderr());
            worker.Isolation = hello.Isolation ?? [];
            return worker;
        }
        catch
        {
            worker.Dispose();
            throw;
        }
    }

    public async Task<WorkerReport> RunAsync(WorkerRequest request, CancellationToken ct)
    {
        Runs++;
        var frames = new List<WorkerFrame>();
        try
        {
            await WorkerProtocol.WriteAsync(_process.StandardInput.BaseStream, request, ct).ConfigureAwait(false);
        }
        catch (IOException)
        {
            return await StoppedAsync(frames, null).ConfigureAwait(false);
        }
        // Per frame: one test's budget plus grace (the first also covers loading the program).
        var perFrame = request.Limits.TimePerTest + request.Limits.HostGrace;
        while (true)
        {
            WorkerFrame? frame;
            try
            {
                frame = await ReadFrameAsync(perFrame, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Kill();
                return new WorkerReport(frames, false, true, Verdict.TimeLimit,
                    $"no answer within {perFrame.TotalMilliseconds:0} ms; worker killed");
            }
            catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException)
            {
                Kill();
                return new WorkerReport(frames, false, true, Verdict.SandboxError, "corrupt worker frame: " + e.Message);
            }
            if (frame is null) return await StoppedAsync(frames, null).ConfigureAwait(false);
            if (frame.Nonce != request.Nonce)
            {
                Kill();
                return new WorkerReport(frames, false, true, Verdict.SandboxError, "worker frame with a wrong nonce (forged?)");
            }
            if (frame.Kind == "end")
            {
                if (frames.Count == request.Cases.Count) return new WorkerReport(frames, true, frame.Recycle, null, null);
                // The worker gave up mid-program (a case would not stop): it exits by itself.
                return await StoppedAsync(frames, frame).ConfigureAwait(false);
            }
            if (frame.Kind != "case" || frame.Index != frames.Count)
            {
                Kill();
                return new WorkerReport(frames, false, true, Verdict.SandboxError, $"unexpected worker frame {frame.Kind} #{frame.Index}");
            }
            frames.Add(frame);
        }
    }

    public string Stderr()
    {
        lock (_stderr) return _stderr.ToString();
    }

    public void Kill()
    {
        _killedByHost = true;
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        catch (System.ComponentModel.Win32Exception) { }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        try { _process.StandardInput.Close(); }
        catch (IOException) { }
        if (!_process.WaitForExit(200)) Kill();
        _process.WaitForExit(2000);
        _process.Dispose();
        TryDelete(_scratch);
    }

    /// <summary>The worker stopped before finishing: the last case frame it sent (the worker's own TimeLimit
    /// when it gave up), else a verdict from its exit.</summary>
    private async Task<WorkerReport> StoppedAsync(List<WorkerFrame> frames, WorkerFrame? end)
    {
        if (end is not null) return new WorkerReport(frames, false, true, null, null);
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try { await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { Kill(); }
        }
        var (verdict, reason) = Classify();
        return new WorkerReport(frames, false, true, verdict, reason);
    }

    private (Verdict, string) Classify()
    {
        var code = _process.HasExited ? _process.ExitCode : -1;
        var stderr = Stderr();
        if (stderr.Contains("Stack overflow", StringComparison.OrdinalIgnoreCase)) return (Verdict.RuntimeError, "stack overflow");
        if (stderr.Contains("OutOfMemory", StringComparison.OrdinalIgnoreCase) || stderr.Contains("out of memory", StringComparison.OrdinalIgnoreCase))
            return (Verdict.MemoryLimit, "out of memory");
        return code switch
        {
            128 + 24 => (Verdict.TimeLimit, "CPU time limit (SIGXCPU)"),
            128 + 25 => (Verdict.OutputLimit, "file size limit (SIGXFSZ)"),
            128 + 9 when !_killedByHost => (Verdict.MemoryLimit, "killed (SIGKILL, likely out of memory)"),
            _ => (Verdict.RuntimeError, $"worker exited with code {code}" + (stderr.Length > 0 ? ": " + Trim(stderr) : "")),
        };
    }

    private async Task<WorkerFrame?> ReadFrameAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            return await WorkerProtocol.ReadAsync<WorkerFrame>(_process.StandardOutput.BaseStream, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException();
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw;
        }
    }

    private static string Trim(string text) => text.Length <= 500 ? text.Trim() : text[..500].Trim() + "...";

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
