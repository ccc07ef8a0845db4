// posttrain dist-check [--device cpu|cuda|auto] [--backend auto|mpi|nccl] [--bandwidth-mb N]: checks this job's
// distributed engine before a long run. Every rank runs each collective PostTrain uses on known inputs and compares
// with the exact expected result (CollectiveCheck); rank 0 prints a table of every rank's verdict, and the exit code is
// 1 if any check failed on any rank. One process (no launcher) checks the single-process group. Typical use:
//   posttrain launch --nproc-per-node 8 dist-check --device cuda
using System.CommandLine;
using PostTrain.Core.Distributed;
using PostTrain.Core.Runtime;

namespace PostTrain.Cli;

public sealed class DistCheckVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var device = new Option<string>("--device") { Description = "device of the tensors: auto | cpu | cuda | cuda:N", DefaultValueFactory = _ => "auto" };
        var backend = new Option<string>("--backend") { Description = "auto | mpi | nccl (see distributed.backend)", DefaultValueFactory = _ => "auto" };
        var bandwidth = new Option<int>("--bandwidth-mb") { Description = "also time an all-reduce of this many MB (0: skip)", DefaultValueFactory = _ => 0 };
        var command = new Command("dist-check", "Check the distributed engine: every collective on known inputs, on every rank") { device, backend, bandwidth };
        command.SetAction(parse =>
        {
            DistBackend engine;
            try { engine = DistBackends.Parse(parse.GetValue(backend), "--backend"); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
            var dev = DeviceSelector.Resolve(parse.GetValue(device), "--device");
            ProcessGroup group;
            try { group = Dist.ForDevice(dev, engine); }
            catch (InvalidOperationException e) when (engine == DistBackend.Nccl) { throw new UsageException(e.Message); }
            string engineName = group switch { NcclProcessGroup => "nccl", MpiProcessGroup => "mpi", _ => "single process" };
            io.Out.WriteLine($"dist-check: {group.Size} rank(s), engine {engineName}, tensors on {dev}");

            var results = CollectiveCheck.Run(group, dev);
            // every rank's failures reach rank 0 (a count per rank, then the table from rank 0's view)
            long[] failures = group.AllGather(results.Count(r => !r.Ok));
            foreach (var r in results)
                io.Out.WriteLine($"  {(r.Ok ? "ok  " : "FAIL")}  {r.Name,-36} {r.Detail}");
            if (!results.All(r => r.Ok))
                foreach (var r in results.Where(r => !r.Ok))
                    io.Error.WriteLine($"rank {group.Rank}: {r.Name} failed: {r.Detail}");
            int mb = parse.GetValue(bandwidth);
            if (mb > 0 && group.Size == 1) io.Out.WriteLine("  bandwidth: one rank, nothing to move");
            else if (mb > 0)
            {
                var (s, alg, bus) = CollectiveCheck.Bandwidth(group, dev, (long)mb * 1024 * 1024);
                io.Out.WriteLine($"  all_reduce {mb} MB fp32: {s * 1e3:F2} ms, algbw {alg:F1} GB/s, busbw {bus:F1} GB/s");
            }
            long failed = failures.Sum();
            io.Out.WriteLine(failed == 0 ? $"all {results.Count} checks passed on {group.Size} rank(s)"
                : $"{failed} check(s) failed, on rank(s) {string.Join(", ", failures.Select((f, r) => (f, r)).Where(x => x.f > 0).Select(x => x.r))}");
            group.Barrier();   // rank 0 has printed before a failing rank's exit ends the job
            return failed == 0 ? CliApp.Ok : CliApp.Failed;
        });
        return command;
    }
}
