// Starts a program as N ranks with Open MPI's mpirun (--oversubscribe: 4 ranks on a 2-core machine) and returns its
// exit code and output. Without mpirun the calling test fails, naming the install script (no silent pass).
using System.Diagnostics;

namespace PostTrain.Training.Tests.Distributed;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MpiCollection { public const string Name = "mpi ranks"; }

public static class MpiRun
{
    public const string Mpirun = "/usr/bin/mpirun";

    public static string Worker => Path.Combine(AppContext.BaseDirectory, "posttrain-dist-worker");
    public static string Cli => Path.Combine(AppContext.BaseDirectory, "posttrain");

    public static (int ExitCode, string Output) Run(int ranks, string program, IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? env = null, int limitSeconds = 180, string? workDir = null)
    {
        Assert.True(File.Exists(Mpirun), $"{Mpirun} not found: the distributed tests need Open MPI; run scripts/ci/install-openmpi.sh " +
            "(apt-get install -y openmpi-bin libopenmpi-dev; the test build does it when it runs as root)");
        var psi = new ProcessStartInfo(Mpirun) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", ranks.ToString() }) psi.ArgumentList.Add(a);
        foreach (var (k, _) in env ?? new Dictionary<string, string>()) { psi.ArgumentList.Add("-x"); psi.ArgumentList.Add(k); }
        psi.ArgumentList.Add(program);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        if (workDir is not null) psi.WorkingDirectory = workDir;
        using var p = StartCapturing(psi, out var output);
        if (!p.WaitForExit(limitSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail($"mpirun -np {ranks} {Path.GetFileName(program)} {string.Join(" ", args)} did not finish in {limitSeconds} s:\n{output}");
        }
        p.WaitForExit();
        lock (output) return (p.ExitCode, output.ToString());
    }

    /// <summary>`posttrain args` as one ordinary process (ranks = 1) or under mpirun as that many ranks.</summary>
    public static (int ExitCode, string Output) RunCli(int ranks, IEnumerable<string> args) =>
        ranks == 1 ? RunSingle(Cli, args) : Run(ranks, Cli, args);

    /// <summary>Starts a process whose stdout and stderr lines are collected (lock the builder to read it).</summary>
    public static Process StartCapturing(ProcessStartInfo psi, out System.Text.StringBuilder output)
    {
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        var p = Process.Start(psi)!;
        var lines = output = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>The same program as one ordinary process (no mpirun): exit code and stdout + stderr.</summary>
    public static (int ExitCode, string Output) RunSingle(string program, IEnumerable<string> args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }
}
