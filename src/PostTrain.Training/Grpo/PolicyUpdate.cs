// The optimisation half of a GRPO step: mu updates over one rollout batch. Each update runs the batch in
// micro-batches: recompute log pi_theta with a padded forward over prompt + completion, take the clipped surrogate
// against the sampler's log-probs (or, with a rollout correction, against the trainer's own log-probs before the
// update, weighting each token by RolloutCorrection; with routing replay the MoE layers use the experts recorded while
// sampling), add beta * k3 KL to the frozen reference (computed once per batch),
// aggregate with normalisers of the whole batch (so micro-batching does not change the loss), backward; then the run's
// update (NaN guard, gradient clipping, optimizer: TrainingRun.Update) and the MoE routing-bias update. Metrics are
// token means over every update. Expert parallel: the MoE layers exchange tokens within the EP group in every forward
// and backward, so each rank runs as many micro-batch passes as the rank with the most (EmptyPass where it has fewer;
// a rank may hold no completion at all). With the fast path (GrpoFastPath, fast_path: on) the same passes run through static
// shapes instead: the batch sorted by length into micro-batches padded to length buckets, each micro-batch one
// accumulation body of its bucket and each update one more body (RunFast); the numbers are the plain path's.
using System.Diagnostics;
using PostTrain.Core.Model;
using PostTrain.Training.Run;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

/// <summary>A completion to train on: its prompt's ids, the completion, and its advantage.</summary>
public sealed record TrainSample(int[] PromptIds, Completion Completion, double Advantage);

public sealed record UpdateStats(double Loss, double GradNorm, double Kl, double Entropy, double ClipLow, double ClipHigh,
    long TrainTokens, double Seconds, double[] LoadRatios, int SkippedUpdates, MismatchStats Mismatch, double IsWeightMean,
    double MaskedFraction, double RoutingDisagreement);

/// <param name="referenceScope">Entered around the reference forward passes (LoRA: the adapters off, so the reference is the
/// base model inside <paramref name="reference"/>, which is then the policy model itself).</param>
/// <param name="fast">The fast path (fast_path: on and the run qualifies), or null for the plain update.</param>
public sealed class PolicyUpdate(DeepSeekForCausalLM model, DeepSeekForCausalLM? reference, TrainingRun run,
    GrpoAlgorithmConfig cfg, double moeBiasGamma, Func<IDisposable>? referenceScope = null, GrpoFastPath? fast = null)
{
    public UpdateStats Run(IReadOnlyList<TrainSample> samples, double lr)
    {
        if (fast is not null) return RunFast(samples, lr);
        var sw = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var device = model.HeadWeight.device;
        var dp = run.Parallel;
        int n = samples.Count;                                    // this rank's completions (data parallel: a share; maybe none)
        int C = Math.Max(1, samples.Select(s => s.Completion.TokenIds.Length).DefaultIfEmpty(0).Max());
        var mask = CompletionMask.Build(samples.Select(s => s.Completion.TokenIds.Length).ToList(),
            samples.Select(s => s.Completion.Truncated).ToList(), C, cfg.MaskTruncatedCompletions, device);     // (n, C)
        var rollout = RolloutLogProbs(samples, C, device);                                                     // (n, C)
        var adv = tensor(samples.Select(s => (float)s.Advantage).ToArray(), device: device);                   // (n)
        var counts = dp.Sum(n, mask.sum().item<float>());           // the global batch's sequences and tokens
        long tokens = (long)counts[1];
        var norm = new LossNormalizer((long)counts[0], tokens, cfg.MaxCompletionLength);
        var slices = Enumerable.Range(0, (n + cfg.MicroBatchSize - 1) / cfg.MicroBatchSize)
            .Select(k => (Start: k * cfg.MicroBatchSize, Count: Math.Min(cfg.MicroBatchSize, n - k * cfg.MicroBatchSize))).ToList();
        // expert parallel: the passes this rank adds so that every rank of its EP group runs the same number (before its
        // own, so their routing loads are discarded before the real micro-batches count theirs)
        int empty = model.ExpertParallel is null ? 0 : (int)dp.Max(slices.Count)[0] - slices.Count;
        if (reference is not null) for (int k = 0; k < empty; k++) EmptyPass(reference, backward: false, device);
        var refLp = reference is null ? null : slices.Select(s => ReferenceLogProbs(samples, s.Start, s.Count, C, device)).ToList();

        var sums = zeros(5, dtype: ScalarType.Float32, device: device);   // loss, kl, entropy, clip low, clip high
        var trainOld = new Tensor[slices.Count];                          // log pi_old by the trainer (first pass)
        var weights = new Tensor[slices.Count];                           // rollout-correction weights (first pass)
        var recordedPerSlice = new Tensor[]?[slices.Count];                // recorded routing per MoE layer (first pass)
        var mismatch = new List<Tensor>(slices.Count);
        bool corrected = cfg.RolloutCorrection != RolloutCorrectionMode.None;
        var routers = model.Model.Layers.Select(l => l.Moe).Where(m => m is not null).Select(m => m!.Gate).ToArray();
        var routeCounts = zeros(2, dtype: ScalarType.Float64, device: device);   // (token, layer) pairs differing, recorded
        double gradNormSum = 0, lossSum = 0;
        long trainTokens = 0;
        int skipped = 0;
        double[] ratios = [];
        model.train();
        for (int pass = 0; pass < cfg.Mu; pass++)
        {
            run.BeginStep(lr);
            var passLoss = zeros(1, device: device);
            for (int k = 0; k < empty; k++) EmptyPass(model, backward: true, device);
            for (int k = 0; k < slices.Count; k++)
            {
                using var inner = NewDisposeScope();
                var (start, count) = slices[k];
                using var batch = Batch(samples, start, count, C, device);
                trainTokens += batch.RealTokens;
                // the rollout's experts as tensors, built once per micro-batch: pass 0 measures disagreement with them,
                // every pass replays them when routing replay is on
                if (pass == 0) recordedPerSlice[k] = Routing(samples, start, count, batch, routers, device)?.Select(t => t.MoveToOuterDisposeScope()).ToArray();
                var recorded = pass == 0 || cfg.RoutingReplay ? recordedPerSlice[k] : null;
                Tensor lp;
                Tensor? entropy;
                using (recorded is null ? null : RecordedRouting.Route(routers, cfg.RoutingReplay ? recorded : null, keepChoice: pass == 0))
                {
                    (lp, entropy) = batch.LogProbs(model, cfg.Temperature, withEntropy: true);   // (m, C)
                    if (recorded is not null && pass == 0 && routers.All(x => x.LastChoice is not null)) routeCounts.add_(Disagreement(routers, recorded));
                }
                var m = mask.narrow(0, start, count);
                var r = rollout.narrow(0, start, count);
                if (pass == 0)
                {
                    trainOld[k] = lp.detach().clone().MoveToOuterDisposeScope();
                    weights[k] = RolloutCorrection.Weights(trainOld[k], r, m, cfg.RolloutCorrection, cfg.RolloutCorrectionCap,
                        cfg.RolloutCorrectionLevel).MoveToOuterDisposeScope();
                    mismatch.Add(MismatchStats.Partial(trainOld[k], r, m).MoveToOuterDisposeScope());
                }
                var s = PolicyLoss.Clipped(lp, corrected ? trainOld[k] : r, adv.narrow(0, start, count), m,
                    cfg.EpsilonLow, cfg.EpsilonHigh, cfg.ImportanceSampling);
                var perToken = corrected ? s.PerToken * weights[k] : s.PerToken;
                Tensor kl = zeros(1, device: device);
                if (refLp is not null)
                {
                    var k3 = KlPenalty.K3(lp, refLp[k]);
                    perToken = perToken + cfg.Beta * k3;
                    kl = (k3.detach() * m).sum();
                }
                var loss = LossAggregator.Aggregate(perToken, m, cfg.LossAggregation, norm);
                loss.backward();
                using (no_grad())
                {
                    passLoss.add_(loss.detach());
                    sums.add_(stack([loss.detach(), kl.reshape([]), (entropy! * m).sum(),
                        (s.LowClipped.to(ScalarType.Float32) * m).sum(), (s.HighClipped.to(ScalarType.Float32) * m).sum()]));
                }
            }
            double value = dp.Sum(passLoss.item<float>())[0];        // the global loss: every rank decides alike to step or skip
            lossSum += value;
            var update = run.Update(value);
            if (update.Applied) gradNormSum += update.GradNorm;
            else skipped++;
            ratios = MoeBalancer.Step(model, update.Applied ? moeBiasGamma : 0, dp.Group);   // a skipped update moves nothing, but clears its loads
        }
        var h = dp.Sum(sums.cpu().data<float>().Select(x => (double)x).ToArray());
        double tokenUpdates = Math.Max(1, tokens) * (double)cfg.Mu;
        int applied = cfg.Mu - skipped;
        var mm = GlobalMismatch(dp, mismatch.Select(t => t.cpu().data<double>().ToArray()).ToList());
        var wStats = dp.Sum(WeightSums(weights, mask));                         // sum w, w == 0, masked tokens
        double maskedTokens = Math.Max(1, wStats[2]);
        double isMean = wStats[0] / maskedTokens, maskedFrac = wStats[1] / maskedTokens;
        var rc = dp.Sum(routeCounts.cpu().data<double>().ToArray());
        double disagreement = rc[1] > 0 ? rc[0] / rc[1] : double.NaN;
        trainTokens = (long)dp.Sum(trainTokens)[0];
        double seconds = dp.Max(sw.Elapsed.TotalSeconds)[0];
        return new UpdateStats(lossSum / cfg.Mu, applied > 0 ? gradNormSum / applied : double.NaN,
            h[1] / tokenUpdates, h[2] / tokenUpdates, h[3] / tokenUpdates, h[4] / tokenUpdates, trainTokens, seconds, ratios, skipped,
            mm, isMean, maskedFrac, disagreement);
    }

    /// <summary>The update through the fast path: the same passes, losses and metrics as the plain one (one process;
    /// routing replay and the routing-disagreement count from the bucket's static routing buffers). Samples are sorted by prompt + completion length
    /// (stable) and cut into micro-batches of micro_batch_size, each padded to its length bucket; the host reads the
    /// device once per update (the loss and gradient norm for the NaN guard) and once for the metrics at the end.</summary>
    private UpdateStats RunFast(IReadOnlyList<TrainSample> samples, double lr)
    {
        var sw = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var f = fast!;
        var device = f.Device;
        int n = samples.Count;
        var sorted = samples.Select((s, i) => (s, i)).OrderBy(x => x.s.PromptIds.Length + x.s.Completion.TokenIds.Length)
            .ThenBy(x => x.i).Select(x => x.s).ToList();
        var micro = Enumerable.Range(0, (n + cfg.MicroBatchSize - 1) / cfg.MicroBatchSize)
            .Select(k => f.Prepare(sorted.Skip(k * cfg.MicroBatchSize).Take(cfg.MicroBatchSize).ToList())).ToList();
        try
        {
            long tokens = samples.Where(s => !(cfg.MaskTruncatedCompletions && s.Completion.Truncated)).Sum(s => (long)s.Completion.TokenIds.Length);
            double denominator = LossAggregator.Denominator(cfg.LossAggregation, new LossNormalizer(n, tokens, cfg.MaxCompletionLength));
            if (reference is not null)
                for (int k = 0; k < micro.Count; k++)
                {
                    var rows = sorted.Skip(k * cfg.MicroBatchSize).Take(cfg.MicroBatchSize).ToList();
                    using var refLp = ReferenceLogProbs(rows, micro[k].Columns, device);
                    var padded = zeros(cfg.MicroBatchSize, micro[k].Columns, device: device);
                    padded.narrow(0, 0, rows.Count).copy_(refLp);
                    micro[k].Reference = padded.DetachFromDisposeScope();
                }
            var sums = zeros(5, dtype: ScalarType.Float32, device: device);     // loss, kl, entropy, clip low, clip high
            var wSums = zeros(3, dtype: ScalarType.Float32, device: device);    // sum w, w == 0, masked tokens (first pass)
            var trainOld = new Tensor?[micro.Count];
            var mismatch = new List<Tensor>(micro.Count);
            var routeCounts = zeros(2, dtype: ScalarType.Float64, device: device);   // (token, layer) pairs differing, recorded
            double gradNormSum = 0, lossSum = 0;
            long trainTokens = 0;
            int skipped = 0;
            double[] ratios = [];
            model.train();
            for (int pass = 0; pass < cfg.Mu; pass++)
            {
                for (int k = 0; k < micro.Count; k++)
                {
                    var mb = micro[k];
                    f.Accumulate(mb, pass == 0 ? null : trainOld[k], firstPass: pass == 0, denominator);
                    trainTokens += mb.RealTokens;
                    var (lp, w, stats) = f.Outputs(mb);
                    sums.add_(stats);
                    if (pass == 0)
                    {
                        if (f.Corrected) trainOld[k] = lp;        // pi_old of the later passes
                        mismatch.Add(MismatchStats.Partial(lp, mb.Rollout, mb.Mask));
                        if (mb.Routing is not null) routeCounts.add_(f.RoutingCounts(mb));
                        wSums.add_(stack([(w * mb.Mask).sum(), (w.eq(0) & mb.Mask.gt(0)).sum().to(ScalarType.Float32), mb.Mask.sum()]));
                    }
                }
                run.BeforeWeightsChange();
                var (value, norm) = f.Apply(lr);
                lossSum += value;
                var update = run.UpdateRecorded(value, norm);
                if (update.Applied) gradNormSum += update.GradNorm;
                else skipped++;
                ratios = MoeBalancer.Step(model, update.Applied ? moeBiasGamma : 0, run.Parallel.Group);
            }
            var h = sums.cpu().data<float>().Select(x => (double)x).ToArray();
            double tokenUpdates = Math.Max(1, tokens) * (double)cfg.Mu;
            int applied = cfg.Mu - skipped;
            var mm = MismatchStats.Combine(mismatch.Select(t => t.cpu().data<double>().ToArray()));
            var ws = wSums.cpu().data<float>().Select(x => (double)x).ToArray();
            double maskedTokens = Math.Max(1, ws[2]);
            var rc = routeCounts.cpu().data<double>().ToArray();
            return new UpdateStats(lossSum / cfg.Mu, applied > 0 ? gradNormSum / applied : double.NaN,
                h[1] / tokenUpdates, h[2] / tokenUpdates, h[3] / tokenUpdates, h[4] / tokenUpdates, trainTokens, sw.Elapsed.TotalSeconds,
                ratios, skipped, mm, ws[0] / maskedTokens, ws[1] / maskedTokens, rc[1] > 0 ? rc[0] / rc[1] : double.NaN);
        }
        finally
        {
            foreach (var mb in micro) mb.Dispose();
        }
    }

    /// <summary>A forward (and backward) over one stand-in token that changes nothing: its loss is 0, so it adds zero to
    /// every gradient, and the routing loads it adds are discarded. It joins the EP group's token exchanges in the MoE
    /// layers for a micro-batch this rank does not have.</summary>
    private void EmptyPass(DeepSeekForCausalLM m, bool backward, Device device)
    {
        using var scope = NewDisposeScope();
        using var grad = backward ? null : no_grad();
        using var batch = new SequenceBatch([[0]], [[0]], 1, device);
        var (lp, _) = batch.LogProbs(m, cfg.Temperature, withEntropy: false);
        if (backward) (lp.sum() * 0).backward();
        foreach (var moe in m.MoeLayers()) moe.TakeLoads();
    }

    /// <summary>The micro-batches' partial mismatch sums combined over this rank, then over the ranks (sums add, the max
    /// is the max).</summary>
    private static MismatchStats GlobalMismatch(Distributed.DataParallel dp, List<double[]> partials)
    {
        var local = new double[5];
        foreach (var p in partials)
        {
            for (int i = 0; i < 5; i++) local[i] = i == 1 ? Math.Max(local[i], p[i]) : local[i] + p[i];
        }
        var sums = dp.Sum(local);
        sums[1] = dp.Max(local[1])[0];
        return MismatchStats.Combine([sums]);
    }

    /// <summary>(sum of the rollout-correction weights over the completion tokens, tokens with weight 0, tokens) on this rank.</summary>
    private static double[] WeightSums(Tensor[] weights, Tensor mask)
    {
        if (weights.Length == 0) return [0, 0, 0];
        using var scope = NewDisposeScope();
        var w = cat(weights.Select(x => x.reshape(-1)).ToArray());
        var flatMask = mask.reshape(-1);
        return [(w * flatMask).sum().item<float>(), (w.eq(0) & flatMask.gt(0)).sum().item<long>(), flatMask.sum().item<float>()];
    }

    /// <summary>The micro-batch's recorded routing as replay tensors per MoE layer, or null when none was recorded.</summary>
    private static Tensor[]? Routing(IReadOnlyList<TrainSample> samples, int start, int count, SequenceBatch batch, Router[] routers, Device device)
    {
        if (routers.Length == 0) return null;
        var traces = samples.Skip(start).Take(count).Select(s => s.Completion.Routing).ToList();
        if (traces.All(t => t is null)) return null;
        return batch.RoutingTensors(traces, routers.Length, routers[0].TopK, device);
    }

    /// <summary>(pairs whose own choice differs from the recorded experts as a set, recorded pairs), over every MoE layer.</summary>
    private static Tensor Disagreement(Router[] routers, Tensor[] recorded)
    {
        using var scope = NewDisposeScope();
        var sum = zeros(2, dtype: ScalarType.Float64, device: recorded[0].device);
        for (int l = 0; l < routers.Length; l++) sum.add_(RecordedRouting.Disagreement(routers[l].LastChoice!, recorded[l]));
        return sum.MoveToOuterDisposeScope();
    }

    private static SequenceBatch Batch(IReadOnlyList<TrainSample> samples, int start, int count, int C, Device device) =>
        new(samples.Skip(start).Take(count).Select(s => s.PromptIds).ToList(),
            samples.Skip(start).Take(count).Select(s => s.Completion.TokenIds).ToList(), C, device);

    /// <summary>pi_rollout as the sampler recorded it, padded to (n, C) with zeros (masked out).</summary>
    private static Tensor RolloutLogProbs(IReadOnlyList<TrainSample> samples, int C, Device device)
    {
        var v = new float[samples.Count * C];
        for (int i = 0; i < samples.Count; i++)
            samples[i].Completion.OldLogProbs.CopyTo(v, i * C);
        return tensor(v, [samples.Count, C], device: device);
    }

    private Tensor ReferenceLogProbs(IReadOnlyList<TrainSample> samples, int start, int count, int C, Device device) =>
        ReferenceLogProbs(samples.Skip(start).Take(count).ToList(), C, device);

    /// <summary>log pi_ref of the rows' completion tokens, (rows, C), without gradients.</summary>
    private Tensor ReferenceLogProbs(IReadOnlyList<TrainSample> rows, int C, Device device)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var batch = Batch(rows, 0, rows.Count, C, device);
        using var off = referenceScope?.Invoke();
        var (lp, _) = batch.LogProbs(reference!, cfg.Temperature, withEntropy: false);
        foreach (var moe in reference!.MoeLayers()) moe.TakeLoads();   // the frozen reference does not balance
        return lp.MoveToOuterDisposeScope();
    }
}
