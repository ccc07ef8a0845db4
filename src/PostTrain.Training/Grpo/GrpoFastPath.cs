// GRPO's policy update through the training fast path (config key fast_path; FastLossStep): whether the run qualifies,
// and the static-shape micro-batch step PolicyUpdate.Run drives when it does. Few static shapes: a micro-batch of
// grpo.micro_batch_size rows (a short last one gets empty rows: no real token, mask 0) is right-padded to a length
// bucket, the smallest power of two >= its longest prompt + completion (at least 8), capped at
// data.max_prompt_tokens + grpo.max_completion_length, with min(bucket - 1, grpo.max_completion_length) completion
// columns; each bucket has its own buffers and its own body (loss -> backward, gradients accumulated in place),
// captured once on CUDA, and the update (clip, guarded fused AdamW, zeroed gradients) is one more body. PolicyUpdate
// sorts the batch by length first, so the rows of a micro-batch are alike and most of it lands in short buckets.
// Inside a bucket's body, with no host read: log pi_theta at the completion tokens (the chunked head, as
// SequenceBatch.LogProbs), the clipped surrogate (PolicyLoss.Clipped, epsilon_low/high, token or sequence ratios) against
// the sampler's log-probs or, with a rollout correction, against the trainer's own log-probs before the update (taken
// from this very forward in the first pass, flagged by a device scalar; from an input buffer in later passes), weighted
// by RolloutCorrection.Weights computed on the device; beta * k3 KL to the reference log-probs (an input buffer, from
// the reference forward run before the update); the configured aggregation divided by the whole batch's normaliser (a
// device scalar: LossAggregator.Denominator). Masked columns are set to 0 before the ratio and KL (their junk
// log-probs could overflow exp and turn 0 * inf into NaN; the plain path's masked terms are 0 as well). Side outputs
// for the metrics: the detached log-probs, the correction weights and (loss, kl, entropy, clip low, clip high) sums.
// MoE routing: each bucket has a static (rows x length, k) buffer per MoE layer holding the experts recorded while
// sampling (RecordedRouting.Tensors; -1 = none: padding, empty rows, the last completion token), filled by every pass.
// With grpo.routing_replay the routers use it (Router.ReplayExperts reads the buffer, so a captured body replays
// whatever the current micro-batch recorded); either way each router's own choice is copied into a second static
// buffer, from which mismatch/routing_disagreement is counted after the body ran (the plain path's measure).
// Qualifies: full fine-tuning or LoRA (the adapters train; the KL reference is the base model, computed outside the
// bodies with the adapters off), AdamW on the device (FastPathRules.Optimizer), one process, no activation recompute, FP8 only with the native FP8 kernels on CUDA; any moe_bias_gamma (the bucket's padding is routed, but the
// routing-bias loads count real tokens only).
using PostTrain.Core.FastPath;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Training.Run;
using TorchSharp;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Training.Grpo;

/// <summary>One micro-batch padded to its bucket (rows x Length ids, rows x Columns completion columns) on the device:
/// inputs built once per update and copied into the bucket's buffers by every pass.</summary>
public sealed class FastMicroBatch : IDisposable
{
    public required int Length { get; init; }
    public required int Columns { get; init; }
    /// <summary>Rows holding a sample (the rest of the micro-batch is empty rows).</summary>
    public required int Count { get; init; }
    public required Tensor Ids { get; init; }          // (M, L) int64
    public required Tensor KeyPadding { get; init; }   // (M, L) bool
    public required Tensor Predictor { get; init; }    // (M, C) int64
    public required Tensor Targets { get; init; }      // (M, C) int64
    public required Tensor Mask { get; init; }         // (M, C) fp32
    public required Tensor Advantages { get; init; }   // (M) fp32
    public required Tensor Rollout { get; init; }      // (M, C) fp32: the sampler's log-probs, 0 past each completion
    /// <summary>The recorded experts, (M * L, k) int64 per MoE layer (-1 = none), or null when no row recorded any.</summary>
    public Tensor[]? Routing { get; init; }
    /// <summary>(M, C) fp32 reference log-probs (beta > 0), else null.</summary>
    public Tensor? Reference { get; set; }
    public required long RealTokens { get; init; }

    public void Dispose()
    {
        foreach (var t in new[] { Ids, KeyPadding, Predictor, Targets, Mask, Advantages, Rollout, Reference }) t?.Dispose();
        foreach (var t in Routing ?? []) t.Dispose();
    }
}

public sealed class GrpoFastPath : IDisposable
{
    private const int MinBucket = 8;

    /// <summary>One bucket's static buffers and outputs.</summary>
    private sealed class Buffers : IDisposable
    {
        public required Tensor Ids, KeyPadding, Predictor, Targets, Mask, Advantages, Rollout, Old, Reference, FirstPass, Denominator;
        public required Tensor LogProbs, Weights, Stats;
        /// <summary>Per MoE layer, (M * L, k) int64: the recorded experts (replayed with routing replay), and the
        /// router's own choice in the last run of the body.</summary>
        public required Tensor[] Recorded, Choice;
        public void Dispose()
        {
            foreach (var t in new[] { Ids, KeyPadding, Predictor, Targets, Mask, Advantages, Rollout, Old, Reference, FirstPass, Denominator, LogProbs, Weights, Stats })
                t.Dispose();
            foreach (var t in Recorded.Concat(Choice)) t.Dispose();
        }
    }

    private readonly GrpoAlgorithmConfig cfg;
    private readonly DeepSeekForCausalLM model;
    private readonly FastLossStep step;
    private readonly TextWriter log;
    private readonly int cap;
    private readonly Dictionary<int, Buffers> buckets = [];
    private readonly Router[] routers;                 // the decoder's MoE routers, in order (as the routing traces)
    private string? said;

    public Device Device => step.Device;
    /// <summary>"cuda-graph", "eager (why)": how the fast steps run.</summary>
    public string Description => step.Description;
    /// <summary>The length buckets used so far.</summary>
    public IReadOnlyCollection<int> Buckets => buckets.Keys;
    /// <summary>Whether the loss weights tokens by a rollout correction (the ratio against the trainer's pi_old).</summary>
    public bool Corrected => cfg.RolloutCorrection != RolloutCorrectionMode.None;

    private GrpoFastPath(GrpoAlgorithmConfig cfg, int maxPromptTokens, DeepSeekForCausalLM model, FastLossStep step, TextWriter log)
    {
        this.cfg = cfg;
        this.model = model;
        this.step = step;
        this.log = log;
        cap = maxPromptTokens + cfg.MaxCompletionLength;
        routers = model.Model.Layers.Select(l => l.Moe).Where(m => m is not null).Select(m => m!.Gate).ToArray();
    }

    /// <summary>Why this run's policy update cannot take the fast path, naming the config key (null when it qualifies).</summary>
    public static string? Disqualified(GrpoConfig cfg, DeepSeekForCausalLM model, int processes)
    {
        if (FastPathRules.Optimizer(cfg.Optimizer) is { } opt) return opt;
        if (FastPathRules.Processes(processes) is { } dist) return dist;
        return FastPathRules.Fp8(model) ?? FastPathRules.Recompute(cfg.Recompute);
    }

    /// <summary>Whether the run's policy updates take the fast path (FastPathRules.Decide: auto = the fast path on CUDA with CUDA graphs).</summary>
    public static bool Decide(GrpoConfig cfg, DeepSeekForCausalLM model, Device device, int processes, TextWriter log) =>
        FastPathRules.Decide(cfg.FastPath, cfg.FastPath == FastPathMode.Off ? null : Disqualified(cfg, model, processes), device, log, "policy update");

    /// <summary>The fast path over the run's optimizer (which TrainingRun built fused for it).</summary>
    /// <param name="log">Gets a line whenever the way the steps run changes (eager, captured, a failed capture).</param>
    public static GrpoFastPath Over(GrpoConfig cfg, DeepSeekForCausalLM model, IOptimizer runOptimizer, TextWriter log) =>
        Create(cfg.Grpo, cfg.Data.MaxPromptTokens, cfg.FastPath, cfg.ClipGradNorm, model, FastPathRules.FusedAdamW(runOptimizer), log);

    /// <summary>The fast path for <paramref name="model"/> and its fused AdamW (tests build it directly).</summary>
    public static GrpoFastPath Create(GrpoAlgorithmConfig cfg, int maxPromptTokens, FastPathMode mode, double? clipGradNorm,
        DeepSeekForCausalLM model, AdamW optimizer, TextWriter log)
    {
        var device = model.HeadWeight.device;
        var options = FastPathRules.StepOptions(device.type == DeviceType.CUDA, clipGradNorm);
        // the trained parameters are the optimizer's: the model's, or the LoRA adapters' (the base model is frozen)
        var step = FastPathRules.Build(mode, () => FastLossStep.Create(optimizer.Parameters, optimizer, device, mode, options,
            log.WriteLine, optimizer.Fused ? FastTrainStep.Fp8Blocker(model) : null, FastTrainStep.GraphBlocker(model)));
        return new GrpoFastPath(cfg, maxPromptTokens, model, step, log);
    }

    /// <summary>The bucket of a micro-batch whose longest row is <paramref name="length"/> tokens.</summary>
    public int Bucket(int length)
    {
        int b = MinBucket;
        while (b < length) b *= 2;
        return Math.Min(b, Math.Max(cap, length));
    }

    /// <summary>Completion columns of a bucket (a completion follows at least one prompt token).</summary>
    public int ColumnsOf(int bucket) => Math.Max(1, Math.Min(bucket - 1, cfg.MaxCompletionLength));

    /// <summary>The samples as one micro-batch padded to its bucket, on the device (empty rows up to micro_batch_size).</summary>
    public FastMicroBatch Prepare(IReadOnlyList<TrainSample> rows)
    {
        int M = cfg.MicroBatchSize;
        if (rows.Count < 1 || rows.Count > M) throw new ArgumentException($"a fast micro-batch holds 1 to grpo.micro_batch_size {M} samples; got {rows.Count}");
        int L = Bucket(rows.Max(s => s.PromptIds.Length + s.Completion.TokenIds.Length));
        int C = ColumnsOf(L);
        var ids = new long[M * L];
        var valid = new bool[M * L];
        var pred = new long[M * C];
        var targets = new long[M * C];
        var mask = new float[M * C];
        var rollout = new float[M * C];
        var adv = new float[M];
        long real = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            var (p, c) = (rows[i].PromptIds, rows[i].Completion.TokenIds);
            if (p.Length == 0) throw new ArgumentException($"row {i}: empty prompt");
            if (c.Length > C) throw new ArgumentException($"row {i}: completion of {c.Length} tokens, more than the bucket's {C} columns");
            for (int j = 0; j < p.Length; j++) { ids[i * L + j] = p[j]; valid[i * L + j] = true; }
            for (int j = 0; j < c.Length; j++) { ids[i * L + p.Length + j] = c[j]; valid[i * L + p.Length + j] = true; }
            bool counts = !(cfg.MaskTruncatedCompletions && rows[i].Completion.Truncated);
            for (int j = 0; j < C; j++)
            {
                pred[i * C + j] = j < c.Length ? p.Length + j - 1 : p.Length - 1;     // as SequenceBatch
                targets[i * C + j] = j < c.Length ? c[j] : 0;
                mask[i * C + j] = j < c.Length && counts ? 1 : 0;                    // as CompletionMask
                rollout[i * C + j] = j < c.Length ? rows[i].Completion.OldLogProbs[j] : 0;
            }
            adv[i] = (float)rows[i].Advantage;
            real += p.Length + c.Length;
        }
        var d = Device;
        return new FastMicroBatch
        {
            Length = L, Columns = C, Count = rows.Count, RealTokens = real,
            Ids = tensor(ids, [M, L], device: d).DetachFromDisposeScope(),
            KeyPadding = tensor(valid, [M, L], device: d).DetachFromDisposeScope(),
            Predictor = tensor(pred, [M, C], device: d).DetachFromDisposeScope(),
            Targets = tensor(targets, [M, C], device: d).DetachFromDisposeScope(),
            Mask = tensor(mask, [M, C], device: d).DetachFromDisposeScope(),
            Advantages = tensor(adv, device: d).DetachFromDisposeScope(),
            Rollout = tensor(rollout, [M, C], device: d).DetachFromDisposeScope(),
            Routing = routers.Length > 0 && rows.Any(r => r.Completion.Routing is not null)
                ? RecordedRouting.Tensors(rows.Select(r => r.Completion.Routing).ToList(), M, L, routers.Length, routers[0].TopK, d)
                    .Select(t => t.DetachFromDisposeScope()).ToArray()
                : null,
        };
    }

    /// <summary>Gradient accumulation of one micro-batch through its bucket's body. old: the trainer's pi_old from the
    /// first pass (a rollout correction's later passes), else null; firstPass: take pi_old from this forward.
    /// denominator: LossAggregator.Denominator of the whole batch.</summary>
    public void Accumulate(FastMicroBatch mb, Tensor? old, bool firstPass, double denominator)
    {
        var b = BuffersOf(mb);
        step.Accumulate($"L{mb.Length}", () => Fill(b, mb, old, firstPass, denominator), () => Loss(b));
    }

    /// <summary>The bucket body's loss over <paramref name="mb"/> computed here, eagerly, with autograd (what
    /// Accumulate runs, without the backward): for tests of the padded computation against the plain one.</summary>
    public Tensor Loss(FastMicroBatch mb, Tensor? old, bool firstPass, double denominator)
    {
        var b = BuffersOf(mb);
        using (no_grad()) Fill(b, mb, old, firstPass, denominator);
        return Loss(b);
    }

    /// <summary>The last Accumulate's side outputs of <paramref name="mb"/>'s bucket, copied: log pi_theta (M, C)
    /// detached, the rollout-correction weights (M, C; the mask without a correction), and (loss, kl, entropy, clip
    /// low, clip high) sums (5).</summary>
    public (Tensor LogProbs, Tensor Weights, Tensor Stats) Outputs(FastMicroBatch mb)
    {
        var b = buckets[mb.Length];
        using (no_grad())
            return (b.LogProbs.clone(), b.Weights.clone(), b.Stats.clone());
    }

    /// <summary>The last Accumulate's routing counts of <paramref name="mb"/>'s bucket: (tokens x MoE layers whose own
    /// expert set differs from the recorded one, those with a record) as float64 (2) on the device; zeros without MoE.</summary>
    public Tensor RoutingCounts(FastMicroBatch mb)
    {
        var b = buckets[mb.Length];
        using var scope = NewDisposeScope();
        var sum = zeros(2, dtype: ScalarType.Float64, device: Device);
        using (no_grad())
            for (int l = 0; l < routers.Length; l++) sum.add_(RecordedRouting.Disagreement(b.Choice[l], b.Recorded[l]));
        return sum.MoveToOuterDisposeScope();
    }

    /// <summary>The update after a pass's micro-batches: clip, guarded fused AdamW, zeroed gradients; the pass's loss
    /// and the gradient norm before clipping, read from the device once.</summary>
    public (double Loss, double GradNorm) Apply(double lr)
    {
        var r = step.Apply(lr);
        if (step.Description != said) log.WriteLine($"fast path: {said = step.Description}");
        using (r.Loss)
        using (r.GradNorm)
            return (r.Loss.item<float>(), r.GradNorm!.item<float>());
    }

    private Buffers BuffersOf(FastMicroBatch mb)
    {
        if (buckets.TryGetValue(mb.Length, out var b)) return b;
        int M = cfg.MicroBatchSize, L = mb.Length, C = mb.Columns;
        var d = Device;
        Tensor Z(ScalarType type, params long[] shape) => zeros(shape, dtype: type, device: d).DetachFromDisposeScope();
        b = new Buffers
        {
            Ids = Z(ScalarType.Int64, M, L), KeyPadding = Z(ScalarType.Bool, M, L),
            Predictor = Z(ScalarType.Int64, M, C), Targets = Z(ScalarType.Int64, M, C),
            Mask = Z(ScalarType.Float32, M, C), Advantages = Z(ScalarType.Float32, M), Rollout = Z(ScalarType.Float32, M, C),
            Old = Z(ScalarType.Float32, M, C), Reference = Z(ScalarType.Float32, M, C),
            FirstPass = Z(ScalarType.Float32), Denominator = Z(ScalarType.Float32),
            LogProbs = Z(ScalarType.Float32, M, C), Weights = Z(ScalarType.Float32, M, C), Stats = Z(ScalarType.Float32, 5),
            Recorded = routers.Select(r => Z(ScalarType.Int64, M * L, r.TopK)).ToArray(),
            Choice = routers.Select(r => Z(ScalarType.Int64, M * L, r.TopK)).ToArray(),
        };
        buckets[L] = b;
        return b;
    }

    private void Fill(Buffers b, FastMicroBatch mb, Tensor? old, bool firstPass, double denominator)
    {
        if (Corrected && old is null && !firstPass)
            throw new ArgumentException("a rollout-corrected later pass needs the first pass's log-probs", nameof(old));
        if ((cfg.Beta > 0) != (mb.Reference is not null))
            throw new ArgumentException($"grpo.beta {cfg.Beta}: reference log-probs {(mb.Reference is null ? "missing" : "given without a KL term")}");
        b.Ids.copy_(mb.Ids); b.KeyPadding.copy_(mb.KeyPadding);
        b.Predictor.copy_(mb.Predictor); b.Targets.copy_(mb.Targets);
        b.Mask.copy_(mb.Mask); b.Advantages.copy_(mb.Advantages); b.Rollout.copy_(mb.Rollout);
        if (mb.Reference is not null) b.Reference.copy_(mb.Reference);
        if (old is not null) b.Old.copy_(old);
        b.FirstPass.fill_(firstPass ? 1 : 0);
        b.Denominator.fill_(denominator);
        for (int l = 0; l < b.Recorded.Length; l++)
        {
            if (mb.Routing is { } recorded) b.Recorded[l].copy_(recorded[l]);
            else b.Recorded[l].fill_(-1);
        }
    }

    // The bucket's loss over its static buffers (eager, or once under capture); side outputs into its buffers.
    private Tensor Loss(Buffers b)
    {
        long M = b.Ids.shape[0], C = b.Mask.shape[1];
        var normed = RoutedForward(b);                                                               // (M, L, H)
        long H = normed.shape[2];
        var picked = normed.gather(1, b.Predictor.unsqueeze(2).expand(M, C, H));                    // (M, C, H)
        var (lpFlat, entFlat) = ChunkedTokenLogProbs.Compute(picked.reshape(-1, H), model.HeadWeight, b.Targets.reshape(-1),
            cfg.Temperature, withEntropy: true);
        var lpRaw = lpFlat.view(M, C);
        var entropy = entFlat!.view(M, C);
        var valid = b.Mask.gt(0);
        var zero = zeros_like(b.Mask);
        var lp = where(valid, lpRaw, zero);
        Tensor old, weights;
        if (Corrected)
        {
            old = where(valid, where(b.FirstPass.gt(0), lp.detach(), b.Old), zero);
            weights = RolloutCorrection.Weights(old, b.Rollout, b.Mask, cfg.RolloutCorrection, cfg.RolloutCorrectionCap, cfg.RolloutCorrectionLevel);
        }
        else
        {
            old = where(valid, b.Rollout, zero);
            weights = b.Mask;
        }
        var s = PolicyLoss.Clipped(lp, old, b.Advantages, b.Mask, cfg.EpsilonLow, cfg.EpsilonHigh, cfg.ImportanceSampling);
        var perToken = Corrected ? s.PerToken * weights : s.PerToken;
        var kl = zeros(1, device: b.Mask.device).squeeze();
        if (cfg.Beta > 0)
        {
            var k3 = KlPenalty.K3(lp, where(valid, b.Reference, zero));
            perToken = perToken + cfg.Beta * k3;
            kl = (k3.detach() * b.Mask).sum();
        }
        var loss = LossAggregator.Aggregate(perToken, b.Mask, cfg.LossAggregation, b.Denominator);
        using (no_grad())
        {
            b.LogProbs.copy_(lpRaw.detach());
            b.Weights.copy_(weights);
            b.Stats.copy_(stack([loss.detach(), kl, (entropy * b.Mask).sum(),
                (s.LowClipped.to(ScalarType.Float32) * b.Mask).sum(), (s.HighClipped.to(ScalarType.Float32) * b.Mask).sum()]));
        }
        return loss;
    }

    // The decoder's forward over the bucket's buffers; each router replays the recorded experts (routing replay) and
    // its own choice is copied into b.Choice.
    private Tensor RoutedForward(Buffers b)
    {
        using var routing = RecordedRouting.Route(routers, cfg.RoutingReplay ? b.Recorded : null, keepChoice: true);
        var normed = model.NormedHidden(b.Ids, mask: new AttentionMask(b.KeyPadding));
        using (no_grad())
            for (int l = 0; l < routers.Length; l++)
                b.Choice[l].copy_(routers[l].LastChoice ?? throw new InvalidOperationException($"MoE layer {l}: the router kept no choice"));
        return normed;
    }

    public void Dispose()
    {
        step.Dispose();
        foreach (var b in buckets.Values) b.Dispose();
        buckets.Clear();
    }
}
