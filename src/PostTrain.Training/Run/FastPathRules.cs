// The fast-path rules the training recipes share (sft, rm, grpo: SftFastPath, RmFastPath, GrpoFastPath): the
// qualification checks every one of them makes, each naming the config key that disqualifies a run, and the decision
// on `fast_path:` with its one log line. auto takes the fast path on CUDA for a run that qualifies when the CUDA-graph
// library is there (measured through the recipes on the H200), else the plain step with the reason in the log; on
// requires it (a RecipeConfigException names what disqualifies the run); off never takes it.
using PostTrain.Core.FastPath;
using PostTrain.Core.Model;
using PostTrain.Core.Recompute;
using PostTrain.Training.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

public static class FastPathRules
{
    // clip_grad_norm with this bound multiplies by exactly 1 (no clipping) but still yields the norm for the metrics;
    // finite in fp32 (double.MaxValue would overflow)
    private const double NoClip = 1e30;

    /// <summary>The step options every recipe's fast path uses: a CUDA graph on CUDA, the run's clip_grad_norm (or none,
    /// still measuring the norm), and the non-finite guard on the device.</summary>
    public static FastTrainStepOptions StepOptions(bool cuda, double? clipGradNorm) =>
        new() { CudaGraph = cuda, MaxGradNorm = clipGradNorm ?? NoClip, SkipNonFinite = true };

    /// <summary>The fast step updates with the fused AdamW on the device: why this optimizer section cannot (null when it can).</summary>
    public static string? Optimizer(OptimizerConfig o)
    {
        if (o.Name != OptimizerKind.AdamW) return $"optimizer.name: {o.Name.ToString().ToLowerInvariant()} (the fast path steps AdamW)";
        if (o.Offload != OptimizerOffload.None) return "optimizer.offload: host (the fast path steps AdamW on the device)";
        if (o.Fused == FusedOptimizer.False) return "optimizer.fused: false (the fast path steps the fused AdamW)";
        if (o.StochasticRounding) return "optimizer.stochastic_rounding: the fused AdamW rounds to nearest (the plain step rounds stochastically)";
        if (o.Bf16Moments) return "optimizer.bf16_moments: the fused AdamW keeps the moments in the parameters' dtype (fp32)";
        return null;
    }

    /// <summary>Data parallel through the fast step (each rank's step on its share of the batch, the gradients summed
    /// between the backward and update bodies): ZeRO 0, no expert parallelism, and a batch that splits evenly, so every
    /// rank's share has the step's static shape. Null when it qualifies (or one process).</summary>
    public static string? DataParallel(int processes, DistributedConfig d, int batchSize, string batchKey)
    {
        if (processes <= 1) return null;
        if (d.ZeroStage != 0) return $"distributed.zero_stage: {d.ZeroStage} (the data-parallel fast step sums whole gradients: ZeRO 0 only)";
        if (d.ExpertParallel > 1) return $"distributed.expert_parallel: {d.ExpertParallel} (the data-parallel fast step replicates every expert)";
        if (batchSize % processes != 0) return $"{batchKey}: {batchSize} rows do not split evenly over {processes} processes (each rank's share is the fast step's static shape)";
        return null;
    }

    /// <summary>The fast step runs in one process.</summary>
    public static string? Processes(int processes) =>
        processes > 1 ? $"distributed: {processes} processes (the fast path runs one process; Parallel.Size must be 1)" : null;

    /// <summary>FP8 on CUDA without the native FP8 kernels reads expert counts on the host (FastTrainStep.Fp8Blocker).</summary>
    public static string? Fp8(DeepSeekForCausalLM model) =>
        FastTrainStep.Fp8Blocker(model) is { } fp8 ? $"model precision fp8: {fp8}" : null;

    /// <summary>Selective recompute runs captured in the fast step: measured on the H200 (2026-12-05,
    /// benchmarks/results/train-memory-h200-2026-12-05.*: bench-moe captured in one graph at 0.97x the speed without
    /// recompute, peak 4.77 against 5.87 GiB, the step's losses those of the run without recompute to bf16 noise).
    /// Layer recompute has not been run captured yet, so it still disqualifies the run.</summary>
    public static string? Recompute(RecomputeMode mode) => mode is RecomputeMode.None or RecomputeMode.Selective ? null
        : $"recompute: {mode.ToString().ToLowerInvariant()} (the fast step equals the plain one with layer recompute when run eagerly, " +
          "but has not yet been run captured in a CUDA graph: measure it with `posttrain bench-train --fast-path on --recompute layer` first; " +
          "set recompute: selective or none, or fast_path: off)";

    /// <summary>Whether the run trains through the fast path, given why it does not qualify (null: it does): off never,
    /// on always (a RecipeConfigException names what disqualifies it), auto on CUDA with CUDA graphs. Says which once
    /// through log; <paramref name="what"/> names the step ("training step", "policy update", ...).</summary>
    public static bool Decide(FastPathMode mode, string? why, Device device, TextWriter log, string what = "training step")
    {
        if (mode == FastPathMode.Off)
        {
            log.WriteLine($"fast_path: off: the plain {what}");
            return false;
        }
        if (mode == FastPathMode.On && why is not null)
            throw new RecipeConfigException($"fast_path: on, but this run does not qualify: {why}");
        if (why is null && mode == FastPathMode.On)
        {
            log.WriteLine($"fast_path: on: the fast {what} " +
                (device.type == DeviceType.CUDA ? "(CUDA graph after warm-up)" : "(run eagerly: not on CUDA)"));
            return true;
        }
        // auto: the fast path on CUDA when the run qualifies and the step can be captured (without the CUDA-graph
        // library the fast step would run eagerly, slower than the plain one); otherwise the plain step, saying why
        string? graphs = null;
        if (why is null && device.type == DeviceType.CUDA && !PostTrain.Core.Generation.CudaGraph.IsAvailable(out var noGraph))
            graphs = $"CUDA graphs unavailable: {noGraph}";
        if (why is null && device.type == DeviceType.CUDA && graphs is null)
        {
            log.WriteLine($"fast_path: auto: the fast {what} (CUDA graph after warm-up; fast_path: off for the plain step)");
            return true;
        }
        log.WriteLine($"fast_path: auto: the plain {what} ({why ?? graphs ?? "not on CUDA"})");
        return false;
    }

    /// <summary>The fused AdamW under the run's optimizer (which TrainingRun built fused for the fast path).</summary>
    public static PostTrain.Core.Precision.AdamW FusedAdamW(PostTrain.Core.Precision.IOptimizer runOptimizer)
    {
        var local = runOptimizer is PostTrain.Core.Distributed.DataParallelOptimizer dp ? dp.Local : runOptimizer;
        if (local is not PostTrain.Core.Precision.AdamW { Fused: true } adamw)
            throw new InvalidOperationException($"fast path: the run's optimizer is {local.GetType().Name}, not a fused AdamW.");
        return adamw;
    }

    /// <summary>FastLossStep's "on, but cannot be captured" and unsupported-model errors as config errors.</summary>
    public static T Build<T>(FastPathMode mode, Func<T> build)
    {
        try { return build(); }
        catch (InvalidOperationException e)
        {
            throw new RecipeConfigException($"fast_path: {mode.ToString().ToLowerInvariant()}: {e.Message}");
        }
    }
}
