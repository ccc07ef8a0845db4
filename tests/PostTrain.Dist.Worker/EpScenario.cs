// Expert parallel MoE against the single-process MoE. 8 routed experts + 1 shared, sigmoid routing with a random
// correction bias; 4 sequences x 6 tokens, sharded by sequence over all ranks; loss = sum(y * R) for a fixed random R.
// Cases: EP over all ranks with device-limited routing off (reference: plain top-k) and on (M = P / 2, or 1 on two
// ranks; reference: the same MoE with V3 group-limited routing, n_group = P, topk_group = M, k = 2M, which is
// device-limited routing when each group is one device's experts); on 4 ranks also EP 2 x DP 2 (experts replicated
// over two EP groups, expert gradients summed over the replicas). Outputs, input gradients, summed router/shared
// gradients, local expert gradients and summed loads must match (1e-6 relative; loads exactly).
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Tests.DistWorker;

internal static class EpScenario
{
    public static void Run(ProcessGroup world)
    {
        int n = world.Size;
        int m = Math.Max(1, n / 2);
        Case(world, world, SingleProcessGroup.Instance, limit: n, k: 2 * m, "ep" + n);
        Case(world, world, SingleProcessGroup.Instance, limit: m, k: 2 * m, $"ep{n}-limited{m}");
        if (n == 4)
        {
            using var epGroup = world.Split(world.Rank / 2, world.Rank);    // {0,1} {2,3}
            using var dpGroup = world.Split(world.Rank % 2, world.Rank);    // {0,2} {1,3}: same experts
            Case(world, epGroup, dpGroup, limit: 2, k: 2, "ep2xdp2");
            Case(world, epGroup, dpGroup, limit: 1, k: 2, "ep2xdp2-limited1");
        }
    }

    private static void Case(ProcessGroup world, ProcessGroup ep, ProcessGroup dp, int limit, int k, string name)
    {
        using var scope = NewDisposeScope();
        bool limited = limit < ep.Size;
        var cfg = BuiltinModels.Micro() with
        {
            NRoutedExperts = 8, NumExpertsPerTok = k, NGroup = limited ? ep.Size : 1, TopkGroup = limited ? limit : 1,
        };
        manual_seed(5);
        var reference = new MoE(cfg);
        using (no_grad())
        {
            foreach (var (_, p) in reference.named_parameters()) p.copy_(randn(p.shape) * 0.2);
            reference.Gate.CorrectionBias!.copy_(randn(cfg.NRoutedExperts) * 0.05);
        }
        const int B = 4, T = 6;
        var x = randn(B, T, cfg.HiddenSize).requires_grad_();
        var r = randn(B, T, cfg.HiddenSize);
        var yRef = reference.forward(x);
        (yRef * r).sum().backward();
        var refLoads = reference.TakeLoads();

        var split = ProcessGroup.EvenSplit(B, world.Size);
        long first = split.Take(world.Rank).Sum(), count = split[world.Rank];
        var epMoe = new ExpertParallelMoE(cfg with { NGroup = 1, TopkGroup = 1 }, ep, limit);   // the EP layer limits by device itself
        epMoe.LoadFrom(reference);
        var xl = x.detach().narrow(0, first, count).clone().requires_grad_();
        var y = epMoe.forward(xl);
        (y * r.narrow(0, first, count)).sum().backward();

        Check.Close(y, yRef.narrow(0, first, count), 1e-6, $"{name}: output");
        Check.Close(xl.grad!, x.grad!.narrow(0, first, count), 1e-6, $"{name}: input gradient");
        var routerGrad = epMoe.Gate.Weight.grad!.clone();
        world.AllReduce(routerGrad);
        Check.Close(routerGrad, reference.Gate.Weight.grad!, 1e-6, $"{name}: router gradient (summed)");
        var refShared = reference.named_parameters().Where(p => p.name.StartsWith("shared_experts.", StringComparison.Ordinal)).ToList();
        var epShared = epMoe.named_parameters().Where(p => p.name.StartsWith("shared_experts.", StringComparison.Ordinal)).ToList();
        if (refShared.Count == 0 || refShared.Count != epShared.Count) throw new InvalidOperationException($"{name}: shared expert parameters {epShared.Count} vs {refShared.Count}");
        foreach (var ((pn, mine), (_, theirs)) in epShared.Zip(refShared))
        {
            var g = mine.grad!.clone();
            world.AllReduce(g);
            Check.Close(g, theirs.grad!, 1e-6, $"{name}: shared expert {pn} gradient (summed)");
        }
        var local = epMoe.LocalExpertWeights;
        var full = reference.ExpertWeights;
        foreach (var (what, mine, theirs) in new[] { ("gate", local.GateProj, full.GateProj), ("up", local.UpProj, full.UpProj), ("down", local.DownProj, full.DownProj) })
        {
            var g = mine.grad!.clone();
            dp.AllReduce(g);                                                // replicas of the same experts (EP x DP)
            Check.Close(g, theirs.grad!.narrow(0, epMoe.FirstExpert, epMoe.LocalExperts), 1e-6, $"{name}: expert {what}_proj gradient");
        }
        var loads = world.AllReduce(epMoe.TakeLoads());
        Check.Equal(loads, refLoads, $"{name}: global expert loads");
        Console.WriteLine($"ok {name} (experts {epMoe.FirstExpert}..{epMoe.FirstExpert + epMoe.LocalExperts - 1}, loads [{string.Join(",", loads)}])");
    }
}
