// Data parallel + ZeRO against one process. Model: y = tanh(x W1^T + b1) W2^T + b2, plus `e` added to global row 0
// only (a gradient on one rank only, like an expert) and `unused` (no gradient anywhere: AdamW must skip it).
// Loss = sum of squared errors over the global batch / its row count; 13 rows a step (uneven split over 2 or 4
// ranks), clipping at 0.05 (it clips). One process: AdamW on all 13 rows. Ranks: their rows of the same batch,
// DataParallelOptimizer at ZeRO 0, 1 and 2. Per-step losses and final weights must agree to 1e-6 relative; and
// without the gradient sync the weights must differ (the comparison can fail).
using PostTrain.Core.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Tests.DistWorker;

internal static class ZeroScenario
{
    private const int Rows = 13, Steps = 5;
    private const double MaxNorm = 0.05;

    public static void Run(ProcessGroup g)
    {
        var (refLosses, refWeights) = Train(SingleProcessGroup.Instance, ZeroStage.None, sync: true);
        foreach (var stage in new[] { ZeroStage.None, ZeroStage.One, ZeroStage.Two })
        {
            var (losses, weights) = Train(g, stage, sync: true);
            for (int s = 0; s < Steps; s++) Check.Close(losses[s], refLosses[s], 1e-6, $"ZeRO {(int)stage} loss at step {s + 1}");
            double worst = 0;
            foreach (var (name, w) in weights) worst = Math.Max(worst, Check.Close(w, refWeights[name], 1e-6, $"ZeRO {(int)stage} weight {name}"));
            Console.WriteLine($"ok zero{(int)stage} losses [{string.Join(", ", losses.Select(l => l.ToString("F6")))}] weights max rel diff {worst:E2}");
        }
        if (g.Size > 1)
        {
            var (_, unsynced) = Train(g, ZeroStage.None, sync: false);
            double diff = unsynced.Max(kv => (kv.Value - refWeights[kv.Key]).abs().max().item<float>());
            if (diff < 1e-4) throw new InvalidOperationException($"without gradient sync the weights still match (max diff {diff:E2}): the comparison is not sensitive");
            Console.WriteLine($"ok unsynced differs by {diff:E2}");
        }
    }

    private static (List<double> Losses, Dictionary<string, Tensor> Weights) Train(ProcessGroup g, ZeroStage stage, bool sync)
    {
        manual_seed(11);
        var named = new List<(string, Parameter)>
        {
            ("w1", new Parameter(randn(8, 6) * 0.5)), ("b1", new Parameter(zeros(8))),
            ("w2", new Parameter(randn(3, 8) * 0.5)), ("b2", new Parameter(zeros(3))),
            ("e", new Parameter(zeros(3))), ("unused", new Parameter(randn(4, 4))),
        };
        var p = named.ToDictionary(x => x.Item1, x => x.Item2);
        AdamW Make(IReadOnlyList<(string Name, Parameter Param)> ps) => new(ps, lr: 0.05, weightDecay: 0.1, noDecay: ["b1", "b2"]);
        using var dp = new DataParallelOptimizer(g, named, stage, Make);
        using var plain = sync ? null : Make(named);
        var split = ProcessGroup.EvenSplit(Rows, g.Size);
        long first = split.Take(g.Rank).Sum(), count = split[g.Rank];
        var losses = new List<double>();
        for (int step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            var gen = new Generator(1000 + (ulong)step);
            var x = randn(Rows, 6, generator: gen);                      // the same global batch on every rank
            var t = randn(Rows, 3, generator: gen);
            var xs = x.narrow(0, first, count);
            var y = tanh(xs.matmul(p["w1"].t()) + p["b1"]).matmul(p["w2"].t()) + p["b2"];
            if (first == 0 && count > 0) y = cat([y.narrow(0, 0, 1) + p["e"], y.narrow(0, 1, count - 1)], 0);
            var loss = (y - t.narrow(0, first, count)).square().sum() / Rows;
            loss.backward();
            losses.Add(g.AllReduce([loss.item<float>()])[0]);
            if (sync) dp.Step(MaxNorm);
            else { nn.utils.clip_grad_norm_(named.Select(n => n.Item2).Where(q => q.grad is not null), MaxNorm); plain!.Step(); }
            dp.ZeroGrad();
        }
        return (losses, named.ToDictionary(n => n.Item1, n => n.Item2.detach().clone()));
    }
}
