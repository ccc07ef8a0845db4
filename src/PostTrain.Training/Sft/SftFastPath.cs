// SFT's use of the training fast path (config key fast_path; FastTrainStep): whether the run qualifies, and the
// step itself. A qualifying run builds its AdamW fused (TrainingRun.Start(fusedAdamW: true): the same state keys and
// values as the plain AdamW, so checkpoints resume across fast_path on/off) and trains every batch of the full
// (data.batch_size, data.max_seq_len) shape with one FastTrainStep call: the batch is copied into the step's static
// buffers, the schedule's learning rate is written into a device scalar, forward + chunked LM-head loss + backward +
// clip + fused AdamW run (captured as a CUDA graph on CUDA, eagerly on the CPU), and the loss and gradient norm are
// read once afterwards for the NaN guard and the metrics. A non-finite loss or norm skips the update on the device
// (SkipNonFinite); TrainingRun.UpdateRecorded counts it as the plain path's guard does. A batch of another shape (an
// epoch's short last batch) takes the plain step with the same optimizer.
// Qualifies: full fine-tuning (no lora), AdamW on the device (optimizer.offload: none, no bf16_moments with fp32
// parameters), one process, no MTP loss (mtp_lambda 0 or a model without MTP layers), gradient_accumulation_steps 1,
// FP8 only with the native FP8 kernels on CUDA, no activation recompute (not yet run under a CUDA graph; bench-train measures it). Packed and unpacked
// rows both qualify: SftBatches pads every row to data.max_seq_len.
// Loss reported per step = mean CE over the batch's target tokens (+ the balance loss when moe_balance_alpha > 0).
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
    private readonly TextWriter log;
    private FastTrainStep? step;
    private string? said;

    private SftFastPath(SftConfig cfg, DeepSeekForCausalLM model, AdamW optimizer, TextWriter log)
    {
        this.cfg = cfg;
        this.model = model;
        this.optimizer = optimizer;
        this.log = log;
    }

    /// <summary>Why this run cannot take the fast path, naming the config key (null when it qualifies).</summary>
    public static string? Disqualified(SftConfig cfg, DeepSeekForCausalLM model, int processes)
    {
        if (cfg.Lora is not null) return "lora: LoRA adapters train through the plain step (full fine-tuning only)";
        if (FastPathRules.Optimizer(cfg.Optimizer) is { } opt) return opt;
        if (FastPathRules.Processes(processes) is { } dist) return dist;
        if (cfg.GradientAccumulationSteps != 1) return $"gradient_accumulation_steps: {cfg.GradientAccumulationSteps} (one step per batch; set 1)";
        if (cfg.MtpLambda > 0 && model.Mtp.Count > 0) return $"mtp_lambda: {cfg.MtpLambda} (the fast step has no MTP loss; set 0)";
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
        new(cfg, model, FastPathRules.FusedAdamW(runOptimizer), log);

    /// <summary>The batch has the fast step's shape: data.batch_size rows, each padded to data.max_seq_len (the row's
    /// arrays, not its real tokens: a packed row usually ends in padding).</summary>
    public bool Fits(SftBatch batch) => batch.Rows.Count == cfg.Data.BatchSize && batch.Rows.All(r => r.InputIds.Length == cfg.Data.MaxSeqLen);

    /// <summary>One optimizer step on (B, T) ids, aligned labels, position and segment ids; returns the loss and the
    /// gradient norm before clipping, read from the device after the step.</summary>
    public (double Loss, double GradNorm) Step(Tensor ids, Tensor labels, Tensor positions, Tensor segments, double lr)
    {
        step ??= Build();
        var r = step.Step(ids, labels, positions, segments, lr);
        if (step.Description != said) log.WriteLine($"fast path: {said = step.Description}");
        using (r.Loss)
        using (r.GradNorm)
            return (r.Loss.item<float>(), r.GradNorm!.item<float>());
    }

    /// <summary>"cuda-graph", "eager (why)": how the fast steps run (null before the first).</summary>
    public string? Description => step?.Description;

    private FastTrainStep Build()
    {
        bool cuda = model.HeadWeight.device_type == DeviceType.CUDA;
        var options = FastPathRules.StepOptions(cuda, cfg.ClipGradNorm);
        return FastPathRules.Build(cfg.FastPath, () =>
            FastTrainStep.Create(model, optimizer, cfg.Data.BatchSize, cfg.Data.MaxSeqLen, packed: true, cfg.FastPath, options));
    }

    public void Dispose() => step?.Dispose();
}
