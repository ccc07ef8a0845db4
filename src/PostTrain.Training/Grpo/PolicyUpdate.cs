// The optimisation half of a GRPO step: mu updates over one rollout batch. Each update runs the batch in
// micro-batches: recompute log pi_theta with a padded forward over prompt + completion, take the clipped surrogate
// against the sampler's pi_old log-probs, add beta * k3 KL to the frozen reference (computed once per batch),
// aggregate with normalisers of the whole batch (so micro-batching does not change the loss), backward; then the run's
// update (NaN guard, gradient clipping, optimizer: TrainingRun.Update) and the MoE routing-bias update. Metrics are
// token means over every update.
using System.Diagnostics;
using PostTrain.Core.Model;
using PostTrain.Training.Run;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

/// <summary>A completion to train on: its prompt's ids, the completion, and its advantage.</summary>
public sealed record TrainSample(int[] PromptIds, Completion Completion, double Advantage);

public sealed record UpdateStats(double Loss, double GradNorm, double Kl, double Entropy, double ClipLow, double ClipHigh,
    long TrainTokens, double Seconds, double[] LoadRatios, int SkippedUpdates);

public sealed class PolicyUpdate(DeepSeekForCausalLM model, DeepSeekForCausalLM? reference, TrainingRun run,
    GrpoAlgorithmConfig cfg, double moeBiasGamma)
{
    public UpdateStats Run(IReadOnlyList<TrainSample> samples, double lr)
    {
        var sw = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var device = model.HeadWeight.device;
        int n = samples.Count;
        int C = Math.Max(1, samples.Max(s => s.Completion.TokenIds.Length));
        var mask = CompletionMask.Build(samples.Select(s => s.Completion.TokenIds.Length).ToList(),
            samples.Select(s => s.Completion.Truncated).ToList(), C, cfg.MaskTruncatedCompletions, device);     // (n, C)
        var old = OldLogProbs(samples, C, device);                                                             // (n, C)
        var adv = tensor(samples.Select(s => (float)s.Advantage).ToArray(), device: device);                   // (n)
        long tokens = (long)mask.sum().item<float>();
        var norm = new LossNormalizer(n, tokens, cfg.MaxCompletionLength);
        var slices = Enumerable.Range(0, (n + cfg.MicroBatchSize - 1) / cfg.MicroBatchSize)
            .Select(k => (Start: k * cfg.MicroBatchSize, Count: Math.Min(cfg.MicroBatchSize, n - k * cfg.MicroBatchSize))).ToList();
        var refLp = reference is null ? null : slices.Select(s => ReferenceLogProbs(samples, s.Start, s.Count, C, device)).ToList();

        var sums = zeros(5, dtype: ScalarType.Float32, device: device);   // loss, kl, entropy, clip low, clip high
        double gradNormSum = 0, lossSum = 0;
        long trainTokens = 0;
        int skipped = 0;
        double[] ratios = [];
        model.train();
        for (int pass = 0; pass < cfg.Mu; pass++)
        {
            run.BeginStep(lr);
            var passLoss = zeros(1, device: device);
            for (int k = 0; k < slices.Count; k++)
            {
                using var inner = NewDisposeScope();
                var (start, count) = slices[k];
                using var batch = Batch(samples, start, count, C, device);
                trainTokens += batch.RealTokens;
                var (lp, entropy) = batch.LogProbs(model, cfg.Temperature, withEntropy: true);                  // (m, C)
                var m = mask.narrow(0, start, count);
                var s = PolicyLoss.Clipped(lp, old.narrow(0, start, count), adv.narrow(0, start, count), m,
                    cfg.EpsilonLow, cfg.EpsilonHigh, cfg.ImportanceSampling);
                var perToken = s.PerToken;
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
            double value = passLoss.item<float>();
            lossSum += value;
            var update = run.Update(value);
            if (update.Applied) gradNormSum += update.GradNorm;
            else skipped++;
            ratios = MoeBalancer.Step(model, update.Applied ? moeBiasGamma : 0);   // a skipped update moves nothing, but clears its loads
        }
        var h = sums.cpu().data<float>().ToArray();
        double tokenUpdates = Math.Max(1, tokens) * (double)cfg.Mu;
        int applied = cfg.Mu - skipped;
        return new UpdateStats(lossSum / cfg.Mu, applied > 0 ? gradNormSum / applied : double.NaN,
            h[1] / tokenUpdates, h[2] / tokenUpdates, h[3] / tokenUpdates, h[4] / tokenUpdates, trainTokens, sw.Elapsed.TotalSeconds, ratios, skipped);
    }

    private static SequenceBatch Batch(IReadOnlyList<TrainSample> samples, int start, int count, int C, Device device) =>
        new(samples.Skip(start).Take(count).Select(s => s.PromptIds).ToList(),
            samples.Skip(start).Take(count).Select(s => s.Completion.TokenIds).ToList(), C, device);

    /// <summary>pi_old as the sampler recorded it, padded to (n, C) with zeros (masked out).</summary>
    private static Tensor OldLogProbs(IReadOnlyList<TrainSample> samples, int C, Device device)
    {
        var v = new float[samples.Count * C];
        for (int i = 0; i < samples.Count; i++)
            samples[i].Completion.OldLogProbs.CopyTo(v, i * C);
        return tensor(v, [samples.Count, C], device: device);
    }

    private Tensor ReferenceLogProbs(IReadOnlyList<TrainSample> samples, int start, int count, int C, Device device)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var batch = Batch(samples, start, count, C, device);
        var (lp, _) = batch.LogProbs(reference!, cfg.Temperature, withEntropy: false);
        foreach (var moe in reference!.MoeLayers()) moe.TakeLoads();   // the frozen reference does not balance
        return lp.MoveToOuterDisposeScope();
    }
}
