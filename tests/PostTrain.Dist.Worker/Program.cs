// posttrain-dist-worker <scenario>: one rank of a distributed test. Scenarios:
//   collectives  every ProcessGroup call against values each rank can compute by hand
//   zero         DataParallelOptimizer at ZeRO 0, 1, 2 against one process's AdamW on the whole batch
//   ep           ExpertParallelMoE (with and without device-limited routing, EP x DP on 4 ranks) against MoE
//   ckpt-save d  distributed checkpoint pieces written to d; ckpt-load d: read back at this world size
//   ep-model     the expert-parallel DeepSeek model (load, export, gradients, optimizer, bias update) against one process
//   overlap      gradient all-reduce overlapped with backward: readiness at the signal, bitwise equal to the non-overlapped sync
//   crash        rank 1 throws after the first collective; hang: rank 1 stops joining collectives
// Prints "ok <what>" lines; a mismatch throws (exit code 1).
using PostTrain.Core.Distributed;
using PostTrain.Tests.DistWorker;

var group = Dist.World;
string scenario = args.Length > 0 ? args[0] : throw new ArgumentException("usage: posttrain-dist-worker <scenario>");
switch (scenario)
{
    case "collectives": Collectives.Run(group); break;
    case "zero": ZeroScenario.Run(group); break;
    case "ep": EpScenario.Run(group); break;
    case "ckpt-save": CheckpointScenario.Save(group, args[1]); break;
    case "ckpt-load": CheckpointScenario.Load(group, args[1]); break;
    case "ep-model": EpModelScenario.Run(group); break;
    case "overlap": OverlapScenario.Run(group); break;
    case "crash":
        group.Barrier();
        if (group.Rank == 1) throw new InvalidOperationException("rank 1 fails on purpose");
        group.Barrier();
        break;
    case "hang":
        group.Barrier();
        if (group.Rank == 1) Thread.Sleep(Timeout.Infinite);
        group.Barrier();
        break;
    default: throw new ArgumentException($"unknown scenario '{scenario}'");
}
Console.WriteLine($"rank {group.Rank}/{group.Size}: done");
return 0;
