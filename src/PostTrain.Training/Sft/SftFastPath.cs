// SFT's use of the training fast path (config key fast_path; FastTrainStep): whether the run qualifies, and the
// step itself. A qualifying run builds its AdamW fused (TrainingRun.Start(fusedAdamW: true): the same state keys and
// values as the plain AdamW, so checkpoints resume across fast_path on/off) and trains every batch of the full
// (data.batch_size, data.max_seq_len) shape with one FastTrainStep call: the batch is copied into the step's static
// buffers, the schedule's learning rate is written into a device scalar, forward + chunked LM-head loss + backward +
// clip + fused AdamW run (captured as a CUDA graph on CUDA, eagerly on the CPU), and the loss and gradient norm are
// read once afterwards for the NaN guard and the metrics. A non-finite loss or norm skips the update on the device
// (SkipNonFinite); TrainingRun.UpdateRecorded counts it as the plain path's guard does. A step with a micro-batch of
// another shape (an epoch's short last batch) takes the plain step with the same optimizer.
// The loss is the plain step's (Losses.Total): main CE plus mtp_lambda times the MTP depths' mean CE (chunked head, no
// full logits) plus the balance loss. gradient_accumulation_steps > 1: each micro-batch is one accumulation body that
// divides by the whole step's target counts (a device buffer), and the update is one more body.
// Data parallel: each rank runs the step on its share of every micro-batch (data.batch_size / ranks rows) as
// accumulation bodies dividing by the global counts; the gradients are summed over the ranks (the run's
// DataParallelOptimizer.SumGradients, eager) before the update body; each rank's balance loss is weighted by its share.
// Qualifies: full fine-tuning or LoRA (the step trains the optimizer's parameters, the adapters), AdamW on the device (optimizer.offload: none, no bf16_moments with fp32
// parameters), one process or data parallel with ZeRO 0, no expert parallelism and data.batch_size a multiple of the
// ranks, FP8 only with the native FP8 kernels on CUDA, no activation recompute (not yet run under a CUDA graph;
// bench-train measures it). Packed and unpacked rows both qualify: SftBatches pads every row to data.max_seq_len.
// Reported per step, as the plain step: the mean CE over the step's target tokens, and mtp_loss (depth 1's mean CE).
using PostTrain.Core.Distributed;
using PostTrain.Core.FastPath;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Training.Recipes;
using PostTrain.Training.Run;
using TorchSharp;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Training.Sft;

public sealed class SftFastPath : IDisposable
{

    private readonly SftConfig cfg;
    private readonly DeepSeekForCausalLM model;
    private readonly AdamW optimizer;
    private readonly DataParallelOptimizer? dataParallel;   // several ranks: sums the gradients
    private readonly TextWriter log;
    private FastTrainStep? step;
    private string? said;

    private SftFastPath(SftConfig cfg, DeepSeekForCausalLM model, AdamW optimizer, DataParallelOptimizer? dataParallel, TextWriter log)
    {
        this.cfg = cfg;
        this.model = model;
        this.optimizer = optimizer;
        this.dataParallel = dataParallel is { Group.Size: > 1 } ? dataParallel : null;
        this.log = log;
    }

    /// <summary>Ranks sharing each batch (1: one process).</summary>
    private int Ranks => dataParallel?.Group.Size ?? 1;

    /// <summary>Why this run cannot take the fast path, naming the config key (null when it qualifies).</summary>
    public static string? Disqualified(SftConfig cfg, DeepSeekForCausalLM model, int processes)
    {
        if (FastPathRules.Optimizer(cfg.Optimizer) is { } opt) return opt;
        if (FastPathRules.DataParallel(processes, cfg.Distributed, cfg.Data.BatchSize, "data.batch_size") is { } dist) return dist;
        return FastPathRules.Fp8(model) ?? FastPathRules.Recompute(cfg.Recompute);
    }

    /// <summary>Whether the run trains through the fast path: off never, on always (a RecipeConfigException names what
    /// disqualifies it); auto on CUDA when the run qualifies and CUDA graphs are available (FastPathRules.Decide).
    /// Says which path through log.</summary>
    public static bool Decide(SftConfig cfg, DeepSeekForCausalLM model, Device device, int processes, TextWriter log) =>
        FastPathRules.Decide(cfg.FastPath, cfg.FastPath == FastPathMode.Off ? null : Disqualified(cfg, model, processes), device, log);

    /// <summary>The fast path over the run's optimizer (which TrainingRun built fused for it).</summary>
    /// <param name="log">Gets a line whenever the way the steps run changes (eager warm-up, captured, a failed capture).</param>
    public static SftFastPath Over(SftConfig cfg, DeepSeekForCausalLM model, IOptimizer runOptimizer, TextWriter log) =>
        new(cfg, model, FastPathRules.FusedAdamW(runOptimizer), runOptimizer as DataParallelOptimizer, log);

    /// <summary>The batch has the fast step's shape: data.batch_size rows, each padded to data.max_seq_len (the row's
    /// arrays, not its real tokens: a packed row usually ends in padding).</summary>
    public bool Fits(SftBatch batch) => batch.Rows.Count == cfg.Data.BatchSize && batch.Rows.All(r => r.InputIds.Length == cfg.Data.MaxSeqLen);

    /// <summary>The MTP depths the loss includes (0 without MTP loss).</summary>
    public int MtpDepth => cfg.MtpLambda > 0 ? model.Mtp.Count : 0;

    /// <summary>One optimizer step over the micro-batches' (B, T) ids, aligned labels, position and segment ids (this
    /// rank's share of each: data.batch_size / ranks rows): one body for a single micro-batch in one process, else one
    /// accumulation body each (dividing by <paramref name="stepCounts"/>: the global step's target counts, main then
    /// each MTP depth) and the update, the gradients summed over the ranks before it. Returns the loss the update was
    /// guarded on, the gradient norm before clipping, and this rank's CE sums over the main and MTP depth 1's targets,
    /// read from the device once after the step.</summary>
    public (double Loss, double GradNorm, double MainSum, double MtpSum) Step(
        IReadOnlyList<(Tensor Ids, Tensor Labels, Tensor Positions, Tensor Segments)> micro, IReadOnlyList<long> stepCounts, double lr)
    {
        step ??= Build();
        using var scope = NewDisposeScope();
        FastStepResult r;
        Tensor parts;
        if (micro.Count == 1 && dataParallel is null)
        {
            var (ids, labels, positions, segments) = micro[0];
            r = step.Step(ids, labels, positions, segments, lr);
            parts = step.Parts();
        }
        else
        {
            parts = zeros(2, device: model.HeadWeight.device);
            foreach (var (ids, labels, positions, segments) in micro)
            {
                step.Accumulate(ids, labels, positions, segments, stepCounts);
                parts.add_(step.Parts());
            }
            r = step.Apply(lr);
        }
        if (step.Description != said) log.WriteLine($"fast path: {said = step.Description}");
        using (r.Loss)
        using (r.GradNorm)
        {
            // one device read: loss, gradient norm, the two CE sums
            var h = cat([r.Loss.reshape(1), r.GradNorm!.reshape(1), parts]).cpu().data<float>().ToArray();
            return (h[0], h[1], h[2], h[3]);
        }
    }

    /// <summary>"cuda-graph", "eager (why)": how the fast steps run (null before the first).</summary>
    public string? Description => step?.Description;

    private FastTrainStep Build()
    {
        bool cuda = model.HeadWeight.device_type == DeviceType.CUDA;
        var options = FastPathRules.StepOptions(cuda, cfg.ClipGradNorm);
        return FastPathRules.Build(cfg.FastPath, () =>
            FastTrainStep.Create(model, optimizer, cfg.Data.BatchSize / Ranks, cfg.Data.MaxSeqLen, packed: true, cfg.FastPath,
                options with { MtpLambda = MtpDepth > 0 ? cfg.MtpLambda : 0, BalanceScale = 1.0 / Ranks },
                sumGradients: dataParallel is null ? null : dataParallel.SumGradients));
    }

    public void Dispose() => step?.Dispose();
}
