// Gradient all-reduce overlapped with backward. The micro DeepSeek model (dense and MoE layers, one MTP module).
// 1. Readiness (no communication): with GradientReadyFunction on every decoder layer's input, the layer's parameter
//    gradients at the signal are non-null and bitwise equal to the gradients once backward has returned; and every
//    gradient of the marked model is bitwise the unmarked model's (the markers do not change the sums' order).
// 2. Training, 3 steps of AdamW with clipping, 8 sequences x 8 tokens a step sharded over the ranks, ZeRO 0 and 1, with
//    1 and (ZeRO 0) 2 backward passes per step: "overlapped" (DataParallelOptimizer.EnableOverlap, the marker in the
//    model) against "planned" (EnableOverlap, the marker not installed: the same buckets, all reduced at the step):
//    per-step losses and final weights bitwise equal; and against "plain" (no EnableOverlap: today's buckets): bitwise
//    on 2 ranks (a sum of two is exact whatever the bucket), 1e-6 relative on more. The overlapped run must have
//    started at least 2 buckets from within backward every step (the counter is read as soon as backward returns);
//    the planned run none. Two more cases where rank 0 runs more backward passes than the others (rank 0 alone starts
//    buckets; rank 0's started sums are stale): the same bitwise equality.
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Tests.DistWorker;

internal static class OverlapScenario
{
    private const int B = 8, T = 8, Steps = 3;
    private const long BucketElements = 3000;
    private const double MaxNorm = 0.5;

    private enum Mode { Plain, Planned, Overlapped }

    private sealed record Result(List<double> Losses, Dictionary<string, Tensor> Weights, List<int> Launched);

    public static void Run(ProcessGroup world)
    {
        CheckReadyAtSignal();
        // rank0passes: backward passes of rank 0 a step (the others run `accumulation`), as when a rank has no rows
        // in a micro-batch: 2 = only rank 0 starts buckets (the others catch up at the step); 3 = rank 0's are stale
        foreach (var (stage, accumulation, rank0passes) in new[] { (ZeroStage.None, 1, 1), (ZeroStage.One, 1, 1), (ZeroStage.None, 2, 2), (ZeroStage.None, 1, 2), (ZeroStage.None, 2, 3) })
        {
            bool uneven = rank0passes != accumulation;
            string name = $"overlap zero{(int)stage} accumulation{accumulation}" + (uneven ? $" rank0passes{rank0passes}" : "");
            int passes = IsRank0(world) ? rank0passes : accumulation;
            var plain = Train(world, stage, accumulation, passes, Mode.Plain);
            var planned = Train(world, stage, accumulation, passes, Mode.Planned);
            var overlapped = Train(world, stage, accumulation, passes, Mode.Overlapped);
            for (int s = 0; s < Steps; s++)
            {
                if (overlapped.Losses[s] != planned.Losses[s]) throw new InvalidOperationException($"{name}: loss at step {s + 1} {overlapped.Losses[s]:R} != planned {planned.Losses[s]:R}");
                if (world.Size == 2 && overlapped.Losses[s] != plain.Losses[s]) throw new InvalidOperationException($"{name}: loss at step {s + 1} {overlapped.Losses[s]:R} != plain {plain.Losses[s]:R}");
                Check.Close(overlapped.Losses[s], plain.Losses[s], 1e-6, $"{name}: loss at step {s + 1} against plain");
            }
            double worst = 0;
            foreach (var (key, w) in overlapped.Weights)
            {
                if (!w.eq(planned.Weights[key]).all().item<bool>()) throw new InvalidOperationException($"{name}: weight {key} differs from the planned run");
                if (world.Size == 2 && !w.eq(plain.Weights[key]).all().item<bool>()) throw new InvalidOperationException($"{name}: weight {key} differs from the plain run");
                worst = Math.Max(worst, Check.Close(w, plain.Weights[key], 1e-6, $"{name}: weight {key} against plain"));
            }
            if (!uneven && overlapped.Launched.Any(n => n < 2)) throw new InvalidOperationException($"{name}: buckets started during backward per step [{string.Join(", ", overlapped.Launched)}], expected at least 2");
            if (planned.Launched.Any(n => n != 0)) throw new InvalidOperationException($"{name}: the planned run started buckets during backward");
            Console.WriteLine($"ok {name}: losses and weights bitwise equal to the planned run, {(world.Size == 2 ? "bitwise" : $"within {worst:E1}")} of plain; " +
                $"buckets started during backward per step [{string.Join(", ", overlapped.Launched)}]");
        }
    }

    private static bool IsRank0(ProcessGroup g) => g.Rank == 0;

    private static DeepSeekForCausalLM Model()
    {
        var model = new DeepSeekForCausalLM(BuiltinModels.Micro());
        model.InitWeights(0.05, seed: 3);
        return model;
    }

    private static Tensor Loss(DeepSeekForCausalLM model, Tensor ids, Tensor labels)
    {
        var o = model.Forward(ids, computeMtp: true);
        return Losses.CrossEntropySum(o.Logits, labels).Sum / (B * T)
            + Losses.CrossEntropySum(o.MtpLogits[0], labels.narrow(1, 1, T - 1)).Sum * (0.3 / (B * (T - 1)));
    }

    private static void CheckReadyAtSignal()
    {
        using var model = Model();
        var layers = model.LayerParameters().Select(l => l.ToList()).ToList();
        var atSignal = new List<Tensor?>[layers.Count];
        model.LayerInputMarker = (i, h) => GradientReadyFunction.Mark(h, () => atSignal[i] = layers[i].Select(p => p.grad?.clone()).ToList());
        using var scope = NewDisposeScope();
        var gen = new Generator(5);
        var ids = randint(0, model.Config.VocabSize, [B, T], generator: gen);
        var labels = randint(0, model.Config.VocabSize, [B, T], generator: gen);
        Loss(model, ids, labels).backward();
        int checkedGrads = 0;
        for (int i = 0; i < layers.Count; i++)
        {
            if (atSignal[i] is null) throw new InvalidOperationException($"layer {i}: no gradient-ready signal in backward");
            for (int j = 0; j < layers[i].Count; j++)
            {
                var final = layers[i][j].grad;
                if (final is null) continue;   // an expert no token chose
                var early = atSignal[i][j] ?? throw new InvalidOperationException($"layer {i} parameter {j}: no gradient yet at the signal");
                if (!early.eq(final).all().item<bool>()) throw new InvalidOperationException($"layer {i} parameter {j}: the gradient at the signal is not the final one");
                checkedGrads++;
            }
        }
        using var bare = Model();
        Loss(bare, ids, labels).backward();
        foreach (var ((n, a), (_, b)) in model.named_parameters().Zip(bare.named_parameters()))
            if ((a.grad is null) != (b.grad is null) || a.grad is not null && !a.grad.eq(b.grad!).all().item<bool>())
                throw new InvalidOperationException($"{n}: the gradient with the markers differs from the unmarked model's");
        Console.WriteLine($"ok ready at signal: {layers.Count} layers, {checkedGrads} gradients final at their layer's signal; every gradient bitwise the unmarked model's");
    }

    private static Result Train(ProcessGroup g, ZeroStage stage, int accumulation, int passes, Mode mode)
    {
        using var model = Model();
        var named = model.named_parameters().Select(x => (x.name, x.parameter)).ToList();
        using var dp = new DataParallelOptimizer(g, named, stage, ps => new AdamW(ps, lr: 1e-3, weightDecay: 0.1, noDecay: ps.Select(x => x.Name).Where(s => s.Contains("norm"))), BucketElements);
        if (mode != Mode.Plain)
        {
            var marker = dp.EnableOverlap(model.LayerParameters(), accumulation) ?? throw new InvalidOperationException("EnableOverlap declined");
            if (mode == Mode.Overlapped) model.LayerInputMarker = marker;
        }
        var split = ProcessGroup.EvenSplit(B, g.Size);
        long first = split.Take(g.Rank).Sum(), count = split[g.Rank];
        var micro = ProcessGroup.EvenSplit(count, passes);
        var result = new Result([], [], []);
        for (int step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            var gen = new Generator(900 + (ulong)step);
            var ids = randint(0, model.Config.VocabSize, [B, T], generator: gen);
            var labels = randint(0, model.Config.VocabSize, [B, T], generator: gen);
            double loss = 0;
            long at = first;
            foreach (long rows in micro)
            {
                var l = Loss(model, ids.narrow(0, at, rows), labels.narrow(0, at, rows));
                l.backward();
                loss += l.item<float>();
                at += rows;
            }
            result.Launched.Add(dp.BucketsLaunchedDuringBackward);
            result.Losses.Add(g.AllReduce([loss])[0]);
            dp.Step(MaxNorm);
            dp.ZeroGrad();
        }
        foreach (var (name, p) in named) result.Weights[name] = p.detach().clone();
        return result;
    }
}
