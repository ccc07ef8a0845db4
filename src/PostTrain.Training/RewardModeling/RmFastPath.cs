// The rm recipe's use of the training fast path (config key fast_path; FastLossStep): whether the run qualifies, and
// the step. Every micro-batch has the same static shape: data.batch_size pairs = 2 * batch_size rows (chosen rows,
// then rejected rows) right-padded to data.max_seq_len (PreferencePairs drops longer pairs, and every micro-batch is
// full: the epoch order wraps), with key padding, positions and the flat index of each row's last real token built on
// the host and copied into the step's buffers. On the device: the backbone's normed hidden states, the score head at
// the last real tokens, the Bradley-Terry loss (margin and centering terms as in the plain step, divided by the global
// pair count), backward, and with gradient_accumulation_steps 1 the clip + fused AdamW in the same body (one CUDA graph
// per step); with more micro-batches each is an accumulation body and the update one more. The scores go to an output
// buffer, read once after the step for the metrics and the loss the run's NaN guard sees (BradleyTerry.Metrics, as the
// plain step computes them); a non-finite loss or norm skips the update on the device.
// Qualifies: AdamW on the device (FastPathRules.Optimizer), one process, no activation recompute, FP8 only with the
// native FP8 kernels on CUDA, and for MoE backbones moe_balance_alpha 0 (the padding up to data.max_seq_len is routed
// like any token and the sequence-wise balance loss would count it; the routing-bias loads count real tokens only, so
// moe_bias_gamma is free).
using PostTrain.Core.FastPath;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Training.Run;
using TorchSharp;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Training.RewardModeling;

public sealed class RmFastPath : IDisposable
{
    private const string StepKey = "rm-step", MicroKey = "rm-micro";   // bodies: the whole step; one accumulated micro-batch

    private readonly RmConfig cfg;
    private readonly RewardModel model;
    private readonly AdamW optimizer;
    private readonly TextWriter log;
    private readonly bool hasMargin;
    private readonly int pairs, rows, seq;
    private readonly Tensor ids, keep, positions, last, margin, scores;
    private FastLossStep? step;
    private string? said;

    private RmFastPath(RmConfig cfg, RewardModel model, AdamW optimizer, bool hasMargin, TextWriter log)
    {
        this.cfg = cfg;
        this.model = model;
        this.optimizer = optimizer;
        this.hasMargin = hasMargin;
        this.log = log;
        (pairs, rows, seq) = (cfg.Data.BatchSize, 2 * cfg.Data.BatchSize, cfg.Data.MaxSeqLen);
        var device = model.ScoreWeight.device;
        ids = zeros(rows, seq, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
        keep = zeros(rows, seq, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
        positions = zeros(rows, seq, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
        last = zeros(rows, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
        margin = zeros(pairs, dtype: ScalarType.Float32, device: device).DetachFromDisposeScope();
        scores = zeros(rows, dtype: ScalarType.Float32, device: device).DetachFromDisposeScope();
    }

    /// <summary>Why this run cannot take the fast path, naming the config key (null when it qualifies).</summary>
    public static string? Disqualified(RmConfig cfg, RewardModel model, int processes)
    {
        if (FastPathRules.Optimizer(cfg.Optimizer) is { } opt) return opt;
        if (FastPathRules.Processes(processes) is { } dist) return dist;
        bool moe = model.Backbone.MoeLayers().Any();
        if (moe && cfg.MoeBalanceAlpha > 0)
            return $"moe_balance_alpha: {cfg.MoeBalanceAlpha} (the fast step pads every row to data.max_seq_len and the sequence-wise balance loss would count the padding; set 0 or fast_path: off)";
        return FastPathRules.Fp8(model.Backbone) ?? FastPathRules.Recompute(cfg.Recompute);
    }

    /// <summary>Whether the run trains through the fast path (FastPathRules.Decide: auto = the fast path on CUDA with CUDA graphs).</summary>
    public static bool Decide(RmConfig cfg, RewardModel model, Device device, int processes, TextWriter log) =>
        FastPathRules.Decide(cfg.FastPath, cfg.FastPath == FastPathMode.Off ? null : Disqualified(cfg, model, processes), device, log);

    /// <summary>The fast path over the run's optimizer (which TrainingRun built fused for it).</summary>
    /// <param name="log">Gets a line whenever the way the steps run changes (eager warm-up, captured, a failed capture).</param>
    public static RmFastPath Over(RmConfig cfg, RewardModel model, IOptimizer runOptimizer, bool hasMargin, TextWriter log) =>
        new(cfg, model, FastPathRules.FusedAdamW(runOptimizer), hasMargin, log);

    /// <summary>"cuda-graph", "eager (why)": how the fast steps run (null before the first).</summary>
    public string? Description => step?.Description;

    /// <summary>One optimizer step over the micro-batches (data.batch_size pairs each); returns every pair's chosen and
    /// rejected scores (read after the step) and the gradient norm before clipping.</summary>
    public (double[] Chosen, double[] Rejected, double GradNorm) Step(IReadOnlyList<IReadOnlyList<PreferencePair>> micro, int padId, double lr)
    {
        step ??= FastPathRules.Build(cfg.FastPath, () => FastLossStep.Create(model.parameters(), optimizer, model.ScoreWeight.device, cfg.FastPath,
            FastPathRules.StepOptions(model.ScoreWeight.device_type == DeviceType.CUDA, cfg.ClipGradNorm),
            unsupported: optimizer.Fused ? FastTrainStep.Fp8Blocker(model.Backbone) : null,
            uncapturable: FastTrainStep.GraphBlocker(model.Backbone)));
        var chosen = new List<double>();
        var rejected = new List<double>();
        FastStepResult? result = null;
        using var scope = NewDisposeScope();
        var read = new List<Tensor>(micro.Count);
        foreach (var batch in micro)
        {
            var (hostIds, hostKeep, hostPos, hostLast, hostMargin) = Inputs(batch, padId);
            void Copy()
            {
                using var scope = NewDisposeScope();
                ids.copy_(tensor(hostIds, [rows, seq]));
                keep.copy_(tensor(hostKeep, [rows, seq]));
                positions.copy_(tensor(hostPos, [rows, seq]));
                last.copy_(tensor(hostLast));
                margin.copy_(tensor(hostMargin));
            }
            if (micro.Count == 1) result = step.Step(StepKey, Copy, Loss, lr);
            else step.Accumulate(MicroKey, Copy, Loss);
            using (no_grad()) read.Add(scores.clone());               // read after the update: no host sync between launches
        }
        result ??= step.Apply(lr);
        foreach (var t in read)
        {
            var r = t.cpu().data<float>().ToArray();
            chosen.AddRange(r.Take(pairs).Select(x => (double)x));
            rejected.AddRange(r.Skip(pairs).Select(x => (double)x));
        }
        if (step.Description != said) log.WriteLine($"fast path: {said = step.Description}");
        using (result.Loss)
        using (result.GradNorm)
            return (chosen.ToArray(), rejected.ToArray(), result.GradNorm!.item<float>());
    }

    /// <summary>The batch as host arrays: chosen rows then rejected rows, right-padded to data.max_seq_len.</summary>
    private (long[] Ids, long[] Keep, long[] Pos, long[] Last, float[] Margin) Inputs(IReadOnlyList<PreferencePair> batch, int padId)
    {
        if (batch.Count != pairs)
            throw new ArgumentException($"the fast rm step takes micro-batches of data.batch_size {pairs} pairs; got {batch.Count}");
        var seqs = batch.Select(p => p.Chosen).Concat(batch.Select(p => p.Rejected)).ToList();
        var (ids, keep, pos, lastIndex) = (new long[rows * seq], new long[rows * seq], new long[rows * seq], new long[rows]);
        for (int i = 0; i < rows; i++)
        {
            var s = seqs[i];
            if (s.Length < 1 || s.Length > seq)
                throw new ArgumentException($"a sequence of {s.Length} tokens does not fit data.max_seq_len {seq}");
            for (int t = 0; t < seq; t++)
            {
                bool real = t < s.Length;
                ids[i * seq + t] = real ? s[t] : padId;
                keep[i * seq + t] = real ? 1 : 0;
                pos[i * seq + t] = real ? t : s.Length - 1;          // as RewardModel.Forward numbers key-padded rows
            }
            lastIndex[i] = (long)i * seq + s.Length - 1;
        }
        return (ids, keep, pos, lastIndex, batch.Select(p => (float)p.Margin).ToArray());
    }

    // The loss over the static buffers (eager, or once under capture): RewardModel.Forward at the known last tokens,
    // then BradleyTerry.Loss over the global batch's pairs.
    private Tensor Loss()
    {
        var hidden = model.Backbone.NormedHidden(ids, positions, new AttentionMask(KeyPadding: keep));   // (2P, T, H)
        var pooled = hidden.reshape(rows * seq, -1).index_select(0, last).to(ScalarType.Float32);      // (2P, H)
        var r = nn.functional.linear(pooled, model.ScoreWeight).squeeze(-1);                           // (2P,)
        using (no_grad()) scores.copy_(r.detach());
        long globalPairs = (long)pairs * cfg.GradientAccumulationSteps;
        return BradleyTerry.Loss(r.narrow(0, 0, pairs), r.narrow(0, pairs, pairs), hasMargin ? margin : null,
            cfg.CenterRewardsCoefficient, globalPairs);
    }

    public void Dispose()
    {
        step?.Dispose();
        foreach (var t in new[] { ids, keep, positions, last, margin, scores }) t.Dispose();
    }
}
