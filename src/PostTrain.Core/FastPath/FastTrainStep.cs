// The training fast path: one training step (forward, chunked LM-head cross-entropy, backward, optional grad-norm
// clip, fused AdamW, zeroed gradients) over static-shape device buffers, captured once as a CUDA graph and replayed
// for every later step. Per step the host only copies the batch into the buffers, writes the learning rate into a
// device scalar and launches the graph; the loss (and grad norm) come back as device tensors to read after the replay.
// What makes the step capturable: fixed (batch, seq) shapes; MoE expert counts stay on the device (scatter-add, and
// _grouped_mm reads device offsets); the loss is divided by a device token count; AdamW is fused with the learning
// rate and step counts in device tensors; gradients are zeroed in place (their addresses never change after the
// first eager steps). Warm-up: the first WarmupSteps steps run eagerly on a side stream (kernels load, gradients and
// optimizer state exist), the next is captured and replayed. Without CUDA graphs (CPU, the library missing, a failed
// capture) the same step runs eagerly, so the numbers are those of the captured step; Description says which.
// The capture, warm-up, replay and fallback logic is FastLossStep's (shared with the reward-model and GRPO steps);
// this class owns the SFT batch buffers and the loss, Losses.Total's:
//   loss = CE_sum / n + sum_k (mtp_lambda / D) CE_k_sum / n_k (+ the MoE balance loss when its alpha > 0)
// over the chunked LM head (no (B, T, V) logits), for the main tokens and each MTP depth k = 1..D (targets
// Losses.MtpLabels: token t + k + 1 where it lies in the same segment). One micro-batch per step (Step): n and n_k
// are counted on the device. Gradient accumulation (Accumulate per micro-batch, then Apply): n and n_k are the whole
// step's counts, given by the caller (a device buffer filled before each body), as the plain step divides by them.
// Side output per body: (CE_sum, CE_1_sum) in a device buffer, for the metrics.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.FastPath;

public sealed record FastTrainStepOptions
{
    /// <summary>Capture the step in a CUDA graph (CUDA only).</summary>
    public bool CudaGraph { get; init; } = true;
    /// <summary>Chunked LM head + cross-entropy (ChunkedHeadLoss) instead of full logits.</summary>
    public bool ChunkedLoss { get; init; } = true;
    /// <summary>Pad v to the q/k head dim so SDPA can use flash attention.</summary>
    public bool PadAttention { get; init; } = true;
    /// <summary>Clip the global gradient L2 norm to this value (on the device), or null.</summary>
    public double? MaxGradNorm { get; init; }
    /// <summary>Skip the optimizer update on the device when the loss or the gradient norm is not finite (the training
    /// run's NaN guard without a host read inside the step; the host sees the non-finite loss after the replay).</summary>
    public bool SkipNonFinite { get; init; }
    /// <summary>Eager steps before the capture.</summary>
    public int WarmupSteps { get; init; } = 2;
    /// <summary>Weight of the MTP losses (Losses.Total's mtp_lambda); 0 = no MTP forward.</summary>
    public double MtpLambda { get; init; }
    /// <summary>Factor on the MoE balance losses: a data-parallel rank's share of the global batch (its rows over all
    /// rows), so the summed gradients hold the batch's mean balance loss, as the plain data-parallel step weights it.</summary>
    public double BalanceScale { get; init; } = 1.0;
}

/// <summary>Loss (fp32 scalar) and the gradient norm before clipping (null without clipping), on the device.</summary>
public sealed record FastStepResult(Tensor Loss, Tensor? GradNorm);

public sealed class FastTrainStep : IDisposable
{
    private const string Key = "sft", AccumulateKey = "sft-micro";
    private readonly DeepSeekForCausalLM model;
    private readonly FastLossStep step;
    private readonly FastTrainStepOptions options;
    private readonly Device device;
    private readonly Tensor ids, labels, positions;
    private readonly Tensor? segments;
    private readonly int depth;                  // MTP depths in the loss (0 without)
    private readonly Tensor counts;              // (1 + depth) fp32: the step's target counts (accumulation)
    private readonly Tensor parts;               // (2) fp32: the last body's CE sum and MTP depth 1's CE sum
    private readonly Action? sumGradients;       // data parallel: the gradient all-reduce before the update

    public int Batch { get; }
    public int Seq { get; }
    /// <summary>"cuda-graph", "eager (why)" or "eager": how the steps run now.</summary>
    public string Description => step.Description;

    private FastTrainStep(DeepSeekForCausalLM model, FastLossStep step, int batch, int seq, bool packed, FastTrainStepOptions options,
        Action? sumGradients)
    {
        this.sumGradients = sumGradients;
        this.model = model;
        this.step = step;
        this.options = options;
        Batch = batch;
        Seq = seq;
        device = model.HeadWeight.device;
        ids = zeros(batch, seq, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
        labels = full(batch, seq, Losses.Ignore, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
        positions = arange(seq, device: device).unsqueeze(0).expand(batch, seq).contiguous().DetachFromDisposeScope();
        segments = packed ? zeros(batch, seq, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope() : null;
        depth = options.MtpLambda > 0 ? model.Mtp.Count : 0;
        counts = ones(1 + depth, device: device).DetachFromDisposeScope();
        parts = zeros(2, device: device).DetachFromDisposeScope();
        model.SetAttentionValuePadding(options.PadAttention);
    }

    /// <summary>MTP depths the loss includes (0 without MTP).</summary>
    public int MtpDepth => depth;

    /// <summary>Why the fast path cannot run for this model and optimizer (null when it can).</summary>
    public static string? Unsupported(DeepSeekForCausalLM model, AdamW optimizer)
    {
        if (!optimizer.Fused) return "the optimizer is not fused AdamW (bf16 moments need bf16 parameters)";
        return Fp8Blocker(model);
    }

    /// <summary>Why FP8 keeps the model off the captured step (null when it does not): on CUDA the FP8 experts must run
    /// on the native FP8 kernels, whose grouped GEMMs keep the expert counts on the device; the per-expert loop reads
    /// them to the host, which a CUDA graph cannot capture. Off CUDA the step runs eagerly and the loop is fine.</summary>
    public static string? Fp8Blocker(DeepSeekForCausalLM model)
    {
        var device = model.HeadWeight.device;
        if (model.Precision != PostTrain.Core.Precision.Precision.Fp8 || device.type != DeviceType.CUDA) return null;
        if (Kernels.Fp8Kernels.ForDevice(device) is not null) return null;
        int index = device.index < 0 ? 0 : device.index;
        return "FP8 experts read expert counts on the host without the native FP8 kernels (" +
            (Kernels.Fp8Kernels.Status.TryGetValue(index, out var status) ? status : "off") + ")";
    }

    /// <summary>Why <paramref name="model"/>'s training step cannot be captured in a CUDA graph on its device (null when
    /// it can): with fp32 activations the routed experts' torch._grouped_mm takes PyTorch's fp32 fallback, which reads
    /// the group offsets to the host (only bf16 has the device-offset kernel), and a capture stops at that copy. The
    /// step then runs eagerly (the same numbers); bf16 compute captures.</summary>
    public static string? GraphBlocker(DeepSeekForCausalLM model) => GraphBlocker(model, model.HeadWeight.device_type);

    internal static string? GraphBlocker(DeepSeekForCausalLM model, DeviceType device) =>
        device == DeviceType.CUDA && model.ComputeDtype == ScalarType.Float32 && model.MoeLayers().Any()
            ? "fp32 activations: torch._grouped_mm's fp32 experts read their group offsets on the host, which a CUDA graph " +
              "cannot capture; model.dtype: bfloat16 (or auto, the shipped recipes' setting) runs the captured step"
            : null;

    /// <summary>Builds the step for (batch, seq) rows (packed: rows carry segment ids). mode Off never comes here;
    /// On throws when a requirement fails; Auto falls back to eager steps and says why through log.
    /// sumGradients: data parallel (each rank one step of its own rows): sums the gradients over the ranks between the
    /// backward bodies and the update (DataParallelOptimizer.SumGradients); the steps then go through Accumulate with
    /// the global target counts and Apply.</summary>
    public static FastTrainStep Create(DeepSeekForCausalLM model, AdamW optimizer, int batch, int seq, bool packed,
        FastPathMode mode, FastTrainStepOptions? options = null, Action<string>? log = null, Action? sumGradients = null)
    {
        options ??= new FastTrainStepOptions();
        // the trained parameters are the optimizer's: all of the model's, or LoRA adapters' (the frozen model has no gradients)
        var core = FastLossStep.Create(optimizer.Parameters, optimizer, model.HeadWeight.device, mode, options, log, Unsupported(model, optimizer),
            GraphBlocker(model));
        return new FastTrainStep(model, core, batch, seq, packed, options, sumGradients);
    }

    /// <summary>One training step on ids/labels (B, T) int64 (labels aligned: -100 = not trained on), positions and
    /// segment ids (B, T) or null (0..T-1; one segment). Sets the learning rate first. The returned tensors are copies.</summary>
    public FastStepResult Step(Tensor inputIds, Tensor targetLabels, Tensor? positionIds, Tensor? segmentIds, double lr)
    {
        Check(inputIds, "input ids"); Check(targetLabels, "labels");
        if (sumGradients is not null)
            throw new InvalidOperationException("FastTrainStep: a data-parallel step divides by the global target counts: use Accumulate and Apply");
        return step.Step(Key, () => CopyInputs(inputIds, targetLabels, positionIds, segmentIds), () => Loss(stepCounts: false), lr);
    }

    /// <summary>One micro-batch of a step with gradient accumulation: its gradients add to the pending ones;
    /// <paramref name="stepCounts"/> = the whole step's target counts (main, then MTP depth 1..MtpDepth), which the
    /// loss divides by. <see cref="Apply"/> ends the step.</summary>
    public void Accumulate(Tensor inputIds, Tensor targetLabels, Tensor? positionIds, Tensor? segmentIds, IReadOnlyList<long> stepCounts)
    {
        Check(inputIds, "input ids"); Check(targetLabels, "labels");
        if (stepCounts.Count != 1 + depth)
            throw new ArgumentException($"FastTrainStep: {1 + depth} target counts (main and {depth} MTP depths); got {stepCounts.Count}.", nameof(stepCounts));
        step.Accumulate(AccumulateKey, () =>
        {
            CopyInputs(inputIds, targetLabels, positionIds, segmentIds);
            counts.copy_(tensor(stepCounts.Select(c => (float)Math.Max(1, c)).ToArray()));
        }, () => Loss(stepCounts: true));
    }

    /// <summary>Ends a step of <see cref="Accumulate"/> calls: clip, guarded fused AdamW, zeroed gradients; the loss is
    /// the micro-batches' summed loss.</summary>
    public FastStepResult Apply(double lr) => step.Apply(lr, sumGradients);

    /// <summary>The last body's (CE sum over the main targets, CE sum over MTP depth 1's targets; 0 without MTP), copied.</summary>
    public Tensor Parts()
    {
        using (no_grad()) return parts.clone();
    }

    private void CopyInputs(Tensor inputIds, Tensor targetLabels, Tensor? positionIds, Tensor? segmentIds)
    {
        if (segmentIds is not null && segments is null)
            throw new ArgumentException("FastTrainStep was built without packed segments; segment ids were given.", nameof(segmentIds));
        ids.copy_(inputIds);
        labels.copy_(targetLabels);
        if (positionIds is not null) positions.copy_(positionIds);
        else positions.copy_(arange(Seq, device: device).unsqueeze(0).expand(Batch, Seq));
        if (segments is not null)
        {
            if (segmentIds is not null) segments.copy_(segmentIds);
            else segments.zero_();
        }
    }

    private void Check(Tensor t, string what)
    {
        if (t.dim() != 2 || t.shape[0] != Batch || t.shape[1] != Seq)
            throw new ArgumentException($"FastTrainStep: {what} must be ({Batch}, {Seq}); got [{string.Join(", ", t.shape)}].");
    }

    // The step's loss over the static buffers (eager, or once under capture). stepCounts: divide by the counts buffer
    // (accumulation) instead of this batch's own counts.
    private Tensor Loss(bool stepCounts)
    {
        var mask = segments is null ? null : new AttentionMask(null, segments);
        var (normed, ahead) = depth > 0
            ? model.NormedHiddenWithMtp(ids, positions, mask, depth)                          // (B, T, H), (B, T - k, H)
            : (model.NormedHidden(ids, positions, mask), []);
        Tensor Count(Tensor targets, int k) => stepCounts
            ? counts[k]
            : targets.ne(Losses.Ignore).sum().clamp_min(1).to(ScalarType.Float32);
        var sum = HeadLossSum(normed, labels);
        var loss = sum / Count(labels, 0);
        Tensor mtpFirst = zeros_like(sum);
        for (int k = 1; k <= ahead.Count; k++)
        {
            var target = Losses.MtpLabels(labels, k, segments);
            var sumK = HeadLossSum(ahead[k - 1], target);
            loss = loss + sumK * (options.MtpLambda / ahead.Count) / Count(target, k);
            if (k == 1) mtpFirst = sumK;
        }
        foreach (var moe in model.MoeLayers())
            if (moe.LastBalanceLoss is { } b) loss = loss + (options.BalanceScale == 1.0 ? b : b * options.BalanceScale);
        using (no_grad()) parts.copy_(stack([sum.detach(), mtpFirst.detach()]));
        return loss;
    }

    // Sum of token cross-entropies of the LM head over normed (B, T', H) against targets (B, T') (-100 = none).
    private Tensor HeadLossSum(Tensor normed, Tensor targets) => options.ChunkedLoss
        ? ChunkedHeadLoss.Sum(normed, model.HeadWeight, targets)
        : nn.functional.cross_entropy(model.Head(normed).reshape(-1, model.Config.VocabSize).to(ScalarType.Float32),
            targets.reshape(-1), ignore_index: Losses.Ignore, reduction: nn.Reduction.Sum);

    public void Dispose()
    {
        step.Dispose();
        foreach (var t in new[] { ids, labels, positions, segments, counts, parts })
            t?.Dispose();
    }
}
