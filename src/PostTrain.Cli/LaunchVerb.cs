// posttrain launch --nproc-per-node N [--hosts a:N,b:N] [--timeout S] <verb> [args]: starts the ranks of a
// distributed run through Open MPI's mpirun (one process per device; each recognises its rank from OMPI_COMM_WORLD_*).
// Several nodes: run it once, on the first node, with --hosts (mpirun starts the other nodes' ranks over ssh); with
// Slurm use `srun --mpi=pmix posttrain <verb>` instead. Ctrl-C / SIGTERM are forwarded to mpirun, which ends every
// rank. A rank that fails ends the job (the rank's exit aborts all), a rank that hangs ends it after --timeout seconds
// in a collective (POSTTRAIN_DIST_TIMEOUT); the launcher exits non-zero and names the rank that failed.
// NVLink multicast stays off in every rank (MulticastOff: NCCL's NVLS, PyTorch's symmetric memory, NVSHMEM), whatever
// the caller's environment says: the variables are set here and exported by mpirun (-x) to every rank, on every node.
using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace PostTrain.Cli;

public sealed partial class LaunchVerb : ICliVerb
{
    /// <summary>Set for every rank: NVLink multicast off (the shared GPU machines require it).</summary>
    public static readonly IReadOnlyList<(string Name, string Value)> MulticastOff =
        [("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"), ("NVSHMEM_DISABLE_NVLS", "1")];

    public Command Build(CliIO io)
    {
        var nproc = new Option<int>("--nproc-per-node") { Description = "ranks per node (one per GPU)", Required = true };
        var hosts = new Option<string?>("--hosts") { Description = "several nodes: host:slots,host:slots (run the launcher on the first node only)" };
        var timeout = new Option<double>("--timeout") { Description = "seconds a collective may wait for a crashed or hung rank before every rank exits", DefaultValueFactory = _ => 600 };
        var mpirun = new Option<string>("--mpirun") { Description = "the mpirun to use", DefaultValueFactory = _ => "mpirun" };
        var rest = new Argument<string[]>("command") { Description = "the posttrain verb and its arguments, e.g. run recipes/sft-quickstart.yaml", Arity = ArgumentArity.OneOrMore };
        var command = new Command("launch", "Start a distributed run: N ranks per node through mpirun") { nproc, hosts, timeout, mpirun, rest };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, ct) => Task.FromResult(Run(io, parse.GetValue(nproc), parse.GetValue(hosts), parse.GetValue(timeout),
            parse.GetValue(mpirun)!, [.. parse.GetValue(rest) ?? [], .. parse.UnmatchedTokens], ct)));
        return command;
    }

    private static int Run(CliIO io, int nproc, string? hosts, double timeout, string mpirun, string[] command, CancellationToken ct)
    {
        if (nproc < 1) throw new UsageException($"--nproc-per-node: {nproc} must be at least 1");
        if (timeout <= 0) throw new UsageException($"--timeout: {timeout} must be positive");
        if (command.Length == 0 || command[0] == "launch") throw new UsageException("launch: give the posttrain verb to run, e.g. `run recipes/sft-quickstart.yaml`");
        var hostList = ParseHosts(hosts);
        int world = hostList.Count == 0 ? nproc : hostList.Count * nproc;

        var psi = new ProcessStartInfo(mpirun) { UseShellExecute = false, RedirectStandardError = true };
        if (geteuid() == 0) psi.ArgumentList.Add("--allow-run-as-root");
        foreach (var a in new[] { "-np", world.ToString(), "--bind-to", "none", "-x", "POSTTRAIN_DIST_TIMEOUT" }) psi.ArgumentList.Add(a);
        foreach (var (name, value) in MulticastOff)
        {
            psi.ArgumentList.Add("-x");
            psi.ArgumentList.Add(name);
            psi.Environment[name] = value;
        }
        if (hostList.Count > 0) { psi.ArgumentList.Add("--host"); psi.ArgumentList.Add(string.Join(",", hostList.Select(h => $"{h}:{nproc}"))); }
        else psi.ArgumentList.Add("--oversubscribe");           // one node: N ranks even where N exceeds the cores
        var (program, prefix) = Self();
        psi.ArgumentList.Add(program);
        foreach (var a in prefix.Concat(command)) psi.ArgumentList.Add(a);
        psi.Environment["POSTTRAIN_DIST_TIMEOUT"] = timeout.ToString(System.Globalization.CultureInfo.InvariantCulture);

        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new UsageException($"--mpirun: '{mpirun}' could not be started ({e.Message}); install Open MPI (apt-get install openmpi-bin libopenmpi-dev)");
        }
        io.Out.WriteLine($"launch: {world} ranks via {mpirun} (collective timeout {timeout} s)");
        var failedRanks = new SortedSet<int>();
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            io.Error.WriteLine(e.Data);
            foreach (Match m in RankPattern().Matches(e.Data))
                lock (failedRanks) failedRanks.Add(int.Parse(m.Groups.Values.Skip(1).First(g => g.Success).Value));
        };
        p.BeginErrorReadLine();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; Forward(p, 15); });
        using var onCancel = ct.Register(() => Forward(p, 2));  // Ctrl-C (the CLI turns it into cancellation)
        p.WaitForExit();
        int code = p.ExitCode;
        if (code != 0)
        {
            lock (failedRanks)
                io.Error.WriteLine(failedRanks.Count > 0
                    ? $"launch: rank {string.Join(", ", failedRanks)} failed or aborted the job (its message is above); all {world} ranks ended (mpirun exit code {code})"
                    : $"launch: the run failed (mpirun exit code {code})");
        }
        return code == 0 ? CliApp.Ok : ct.IsCancellationRequested ? CliApp.Cancelled : code;
    }

    /// <summary>How to start this same posttrain: its apphost, or `dotnet posttrain.dll` when run through dotnet.</summary>
    private static (string Program, string[] Prefix)  Self()
    {
        string process = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this process is unknown");
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? (process, [typeof(LaunchVerb).Assembly.Location]) : (process, []);
    }

    private static List<string> ParseHosts(string? hosts)
    {
        if (string.IsNullOrWhiteSpace(hosts)) return [];
        var list = hosts.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(h => h.Split(':')[0]).ToList();
        if (list.Count == 0 || list.Any(h => h.Length == 0)) throw new UsageException($"--hosts: '{hosts}' is not host[,host...]");
        return list;
    }

    private static void Forward(Process p, int signal)
    {
        try { if (!p.HasExited) kill(p.Id, signal); } catch (InvalidOperationException) { }
    }

    // mpirun: "process rank 1 with PID 123 on node x exited on signal 6" / "MPI_ABORT was invoked on rank 0" /
    // "Process name: [[28216,1],0]" (the first rank that exited non-zero); and a rank's own line before it aborts
    // (MpiProcessGroup.Abort: "rank 0: exited with code 2; ending all 2 ranks"), which names the rank even when mpirun's
    // help message is lost (two ranks aborting at once can garble it: "ORTE_ERROR_LOG: Data unpack would read past end")
    [GeneratedRegex(@"(?:process rank|invoked on rank) (\d+)|Process name: \[\[\d+,\d+\],(\d+)\]|rank (\d+): exited with code")]
    private static partial Regex RankPattern();

    [DllImport("libc", SetLastError = true)] private static extern int kill(int pid, int sig);
    [DllImport("libc")] private static extern uint geteuid();
}
