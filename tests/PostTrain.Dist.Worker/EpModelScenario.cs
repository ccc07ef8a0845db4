// The expert-parallel DeepSeek model against the single-process model. Micro shape with 8 routed experts, k = 3, no
// group limit, sigmoid routing with a random correction bias, one MTP module, sequence-wise balance loss on. The EP
// model (ExpertParallelism over the world's ranks) is loaded from the reference saved as a Hugging Face directory,
// reading this rank's experts only. 4 sequences x 8 tokens, sharded over all ranks, random labels; loss = cross-entropy over the
// global batch + 0.3 x the MTP cross-entropy + the balance loss (each rank's sequences weighted by their share). Cases: EP over all ranks with device-limited
// routing off and on (the reference's routers get the same device mask), and on 4 ranks EP 2 x DP 2, on and off.
// Checked, against plain code on the reference: the consolidated export (names, shapes, values identical); logits and
// every gradient at step 1 (replicated gradients summed over the world, expert gradients over the replica group,
// against the reference's rows; 1e-6); three DataParallelOptimizer steps (AdamW, clipping that clips, ZeRO 0/1/2 by
// case) against AdamW + clip_grad_norm_: losses and gradient norms 1e-6; the exported weights and optimizer state in
// the single-process layout, by tensor norm, weights 2e-6 and moments 1e-5: AdamW's first steps (update ~ lr g / |g|)
// magnify the gradients' fp32 summation-order noise; plain data parallel (model-dp) shows 7e-7 on the weights here,
// EP cases 2e-7 to 1e-6. The aux-loss-free bias update from global loads: exactly the reference's.
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Tests.DistWorker;

internal static class EpModelScenario
{
    private const int B = 4, T = 8, K = 3, Steps = 3;
    private const double WeightTolerance = 2e-6;   // see the header
    private const double MaxNorm = 0.5, Gamma = 0.01, Alpha = 0.01;

    public static void Run(ProcessGroup world)
    {
        int n = world.Size, m = Math.Max(1, n / 2);
        Case(world, 1, 1, ZeroStage.None, $"model-dp{n}");   // plain data parallel: the noise floor of the comparisons
        Case(world, n, n, ZeroStage.None, $"model-ep{n}");
        Case(world, n, m, ZeroStage.Two, $"model-ep{n}-limited{m}");
        if (n == 4)
        {
            Case(world, 2, 2, ZeroStage.One, "model-ep2xdp2");
            Case(world, 2, 1, ZeroStage.Two, "model-ep2xdp2-limited1");
        }
    }

    private static void Case(ProcessGroup world, int p, int limit, ZeroStage stage, string name)
    {
        var cfg = BuiltinModels.Micro() with { NRoutedExperts = 8, NumExpertsPerTok = K, NGroup = 1, TopkGroup = 1 };
        using var ep = ExpertParallelism.Create(world, p, limit);
        using var reference = new DeepSeekForCausalLM(cfg);
        reference.InitWeights(0.05, seed: 3);
        using (no_grad())
            foreach (var moe in reference.MoeLayers()) moe.Gate.CorrectionBias!.copy_(randn(cfg.NRoutedExperts) * 0.05);
        using var model = LoadFromDirectory(reference, ep, name);
        foreach (var moe in reference.MoeLayers().Concat(model.MoeLayers())) moe.BalanceAlpha = Alpha;
        if (limit < p)
            foreach (var moe in reference.MoeLayers()) moe.Gate.SelectionFilter = c => DeviceLimitedRouting.Mask(c, p, limit, K);
        CheckExport(model, reference, exact: true, $"{name}: export before training");

        var refNamed = reference.named_parameters().Select(x => (x.name, x.parameter)).ToList();
        var named = model.named_parameters().Select(x => (x.name, x.parameter)).ToList();
        IEnumerable<string> NoDecay(IEnumerable<(string Name, Parameter)> ps) => ps.Select(x => x.Name).Where(s => s.Contains("norm"));
        using var refOpt = new AdamW(refNamed, lr: 1e-3, weightDecay: 0.1, noDecay: NoDecay(refNamed));
        using var dp = new DataParallelOptimizer(world, named, stage, ps => new AdamW(ps, lr: 1e-3, weightDecay: 0.1, noDecay: NoDecay(ps)), experts: ep);

        var split = ProcessGroup.EvenSplit(B, world.Size);
        long first = split.Take(world.Rank).Sum(), count = split[world.Rank];
        for (int step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            var gen = new Generator(700 + (ulong)step);
            var ids = randint(0, cfg.VocabSize, [B, T], generator: gen);
            var labels = randint(0, cfg.VocabSize, [B, T], generator: gen);

            var refOut = reference.Forward(ids, computeMtp: true);
            var refLoss = Loss(reference, refOut, labels, 1.0);
            refLoss.backward();
            var outp = model.Forward(ids.narrow(0, first, count), computeMtp: true);
            var loss = Loss(model, outp, labels.narrow(0, first, count), (double)count / B);
            loss.backward();
            double total = world.AllReduce([loss.item<float>()])[0];
            Check.Close(total, refLoss.item<float>(), 1e-6, $"{name}: loss at step {step + 1}");
            if (step == 0)
            {
                Check.Close(outp.Logits, refOut.Logits.narrow(0, first, count), 1e-6, $"{name}: logits");
                CheckGradients(named, refNamed, ep, world, name);
            }

            double refNorm = nn.utils.clip_grad_norm_(refNamed.Select(x => x.parameter).Where(q => q.grad is not null), MaxNorm);
            refOpt.Step();
            refOpt.ZeroGrad();
            double norm = dp.Step(MaxNorm);
            dp.ZeroGrad();
            Check.Close(norm, refNorm, 1e-6, $"{name}: gradient norm at step {step + 1}");
            if (norm <= MaxNorm) throw new InvalidOperationException($"{name}: norm {norm} does not exceed {MaxNorm}: clipping is not exercised");

            var refRatios = MoeBalancer.Step(reference, Gamma);
            var ratios = MoeBalancer.Step(model, Gamma, world);
            Check.Equal(ratios, refRatios, $"{name}: max/mean loads at step {step + 1}");
            foreach (var (mine, theirs) in model.MoeLayers().Zip(reference.MoeLayers()))
                Check.Close(mine.Gate.CorrectionBias!, theirs.Gate.CorrectionBias!, 1e-12, $"{name}: correction bias at step {step + 1}");
        }
        double worst = CheckExport(model, reference, exact: false, $"{name}: weights after {Steps} steps");
        CheckOptimizerState(dp.StateDict(), refOpt.StateDict(), name);
        Console.WriteLine($"ok {name} (EP group of {p}, replica group of {ep.Replicas.Size}, experts {ep.FirstExpert(cfg.NRoutedExperts / p)}.., ZeRO {(int)stage}, weights within {worst:E1})");
    }

    /// <summary>The reference saved as a Hugging Face directory and loaded as an EP model, reading this rank's experts only.</summary>
    private static DeepSeekForCausalLM LoadFromDirectory(DeepSeekForCausalLM reference, ExpertParallelism ep, string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"posttrain-ep-model-{Environment.ProcessId}");
        try
        {
            PretrainedModel.Save(reference, dir);
            var (model, _) = PretrainedModel.Load(dir, expertParallel: ep);
            if (HfStateDict.ReadFilter(model) is { } read)
            {
                var experts = HfStateDict.Export(reference).Keys.Where(k => k.Contains(".mlp.experts.")).ToList();
                int local = model.Config.NRoutedExperts / ep.Size, first = ep.FirstExpert(local);
                var expected = experts.Where(k => int.Parse(k.Split('.')[5]) is var e && e >= first && e < first + local).Order().ToList();
                Check.Equal(experts.Where(read).Order().ToList(), expected, $"{name}: expert tensors read from the directory");
            }
            return model;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    // Cross-entropy sums over the global batch's token counts (main, and MTP at 0.3), plus the balance loss.
    private static Tensor Loss(DeepSeekForCausalLM model, ModelOutput o, Tensor labels, double share)
    {
        var loss = Losses.CrossEntropySum(o.Logits, labels).Sum / (B * T)
            + Losses.CrossEntropySum(o.MtpLogits[0], labels.narrow(1, 1, T - 1)).Sum * (0.3 / (B * (T - 1)));
        foreach (var moe in model.MoeLayers()) loss = loss + moe.LastBalanceLoss! * share;   // per-sequence means: weighted to the global mean
        return loss;
    }

    private static void CheckGradients(List<(string Name, Parameter P)> named, List<(string Name, Parameter P)> refNamed,
        ExpertParallelism ep, ProcessGroup world, string name)
    {
        if (!named.Select(x => x.Name).SequenceEqual(refNamed.Select(x => x.Name))) throw new InvalidOperationException($"{name}: parameter names differ");
        int experts = 0;
        foreach (var ((pn, mine), (_, theirs)) in named.Zip(refNamed))
        {
            var g = mine.grad?.clone() ?? zeros_like(mine);
            bool expert = ExpertParallelCheckpoint.IsExpert(pn);
            (expert ? ep.Replicas : world).AllReduce(g);
            var expected = expert ? theirs.grad!.narrow(0, mine.shape[0] * ep.Experts.Rank, mine.shape[0]) : theirs.grad!;
            Check.Close(g, expected, 1e-6, $"{name}: gradient of {pn}");
            if (expert) experts++;
        }
        if (experts == 0) throw new InvalidOperationException($"{name}: no expert parameters were compared");
    }

    /// <summary>Returns the largest relative difference (0 when exact).</summary>
    private static double CheckExport(DeepSeekForCausalLM model, DeepSeekForCausalLM reference, bool exact, string what)
    {
        double worst = 0;
        using var scope = NewDisposeScope();
        var mine = HfStateDict.Export(model, ExpertParallelCheckpoint.Consolidate(model));
        var theirs = HfStateDict.Export(reference);
        Check.Equal(mine.Keys.Order().ToList(), theirs.Keys.Order().ToList(), $"{what}: tensor names");
        foreach (var (key, t) in theirs)
        {
            if (exact && !(mine[key].shape.SequenceEqual(t.shape) && mine[key].eq(t).all().item<bool>()))
                throw new InvalidOperationException($"{what}: {key} differs");
            if (!exact) worst = Math.Max(worst, Check.CloseByNorm(mine[key], t, WeightTolerance, $"{what}: {key}"));
        }
        return worst;
    }

    private static void CheckOptimizerState(Dictionary<string, Tensor> mine, Dictionary<string, Tensor> theirs, string name)
    {
        Check.Equal(mine.Keys.Order().ToList(), theirs.Keys.Order().ToList(), $"{name}: optimizer state keys");
        foreach (var (key, t) in theirs)
            if (t.dim() == 0) Check.Equal([mine[key].item<long>()], [t.item<long>()], $"{name}: optimizer {key}");
            else Check.CloseByNorm(mine[key], t, 1e-5, $"{name}: optimizer {key}");   // moments: the gradients' fp32 summation noise
    }
}
