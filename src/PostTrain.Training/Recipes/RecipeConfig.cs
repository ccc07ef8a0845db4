// The config sections recipes share, as data only (no behaviour is inherited). Every recipe's config derives from
// RecipeConfig (recipe, output_dir, seed, logging); recipes that train derive from TrainerConfig, which adds the
// trainer sections (max_steps, optimizer, scheduler, checkpoint, ...). So eval, pipeline and distill configs have no
// trainer keys, and `posttrain run recipes/eval-quickstart.yaml optimizer.lr=5` is an unknown-key error.
// Keys are the snake_case property names; records keep their defaults for keys a YAML file leaves out.
namespace PostTrain.Training.Recipes;

public abstract record RecipeConfig
{
    /// <summary>The registered recipe that runs this file (see RecipeRegistry).</summary>
    public required string Recipe { get; init; }

    /// <summary>Run directory: outputs, metrics.jsonl, tensorboard/ and resolved_config.yaml go here.</summary>
    public required string OutputDir { get; init; }

    public long Seed { get; init; } = 1234;

    public LoggingConfig Logging { get; init; } = new();
}

/// <summary>The sections every training recipe (sft, rm, grpo, toy_regression) has; TrainingRun reads them.</summary>
public abstract record TrainerConfig : RecipeConfig
{
    /// <summary>Optimizer steps to train for (the run stops here; schedules decay over this span).</summary>
    public long MaxSteps { get; init; } = 1000;

    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Clip the global gradient norm to this value; null = no clipping.</summary>
    public double? ClipGradNorm { get; init; } = 1.0;

    /// <summary>Stop with an error after this many non-finite losses in a row (each one skips its step).</summary>
    public int MaxConsecutiveNonfinite { get; init; } = 5;

    public OptimizerConfig Optimizer { get; init; } = new();
    public SchedulerConfig Scheduler { get; init; } = new();
    public CheckpointConfig Checkpoint { get; init; } = new();
    public DistributedConfig Distributed { get; init; } = new();

    /// <summary>An exponential moving average of the weights in host memory, updated in the background after every
    /// `every` optimizer steps and saved as its own model directory (&lt;output_dir&gt;/ema); null = none.</summary>
    public EmaConfig? Ema { get; init; }

    /// <summary>The static-shape training step (FastLossStep: loss on the device, fused AdamW, one CUDA graph per static
    /// shape) in sft (FastTrainStep), rm (RmFastPath) and grpo's policy update (GrpoFastPath). auto: the plain step for
    /// now, with a log line saying why (the fast path through the recipes is not yet measured on a GPU); on: required (an
    /// error names the config key that disqualifies the run); off: the plain step.</summary>
    public PostTrain.Core.FastPath.FastPathMode FastPath { get; init; } = PostTrain.Core.FastPath.FastPathMode.Auto;

    /// <summary>Activation recompute in the training forward, trading backward compute for activation memory (the same
    /// numbers to rounding). none: keep everything autograd saves. selective: DeepSeek-V3's trick: every RMSNorm and
    /// MLA's up-projections (latent norms, q_b_proj / kv_b_proj, rotary, attention core) are computed again in backward
    /// from their inputs and the compressed latents. layer: full decoder-layer checkpointing: each decoder layer and MTP
    /// block keeps only its input and runs again in backward (not with distributed.expert_parallel > 1).</summary>
    public PostTrain.Core.Recompute.RecomputeMode Recompute { get; init; } = PostTrain.Core.Recompute.RecomputeMode.None;
}

public sealed record EmaConfig
{
    public double Decay { get; init; } = 0.999;
    public long Every { get; init; } = 1;
    /// <summary>Skip an update while the previous background fold still runs (no copy, no wait) and fold the next one with
    /// decay^(k+1): for models whose fold takes longer than a step; false folds every update exactly.</summary>
    public bool SkipWhenBusy { get; init; }
}

public enum OptimizerKind { [RecipeKey("adamw")] AdamW, Sgd }

public sealed record OptimizerConfig
{
    public OptimizerKind Name { get; init; } = OptimizerKind.AdamW;
    public double Lr { get; init; } = 3e-4;
    public double WeightDecay { get; init; } = 0.1;
    public IReadOnlyList<double> Betas { get; init; } = [0.9, 0.95];
    public double Eps { get; init; } = 1e-8;

    /// <summary>Keep AdamW's moments in bf16 (DeepSeek-V3); master weights stay fp32.</summary>
    public bool Bf16Moments { get; init; }

    /// <summary>bf16 parameters (model.param_dtype: bfloat16) trained by the on-device AdamW without fp32 masters: the
    /// update runs in fp32 and is written back with stochastic rounding (unbiased), so updates below bf16's resolution
    /// are not lost. With bf16_moments: 8 bytes per weight on the device (parameter, gradient, two moments).</summary>
    public bool StochasticRounding { get; init; }

    /// <summary>none: the optimizer state lives beside the parameters. host: AdamW's fp32 master weights and moments live
    /// in (pinned) host memory and the update runs on the host (HostOffloadAdamW); the device keeps only the parameters
    /// (model.param_dtype) and their gradients.</summary>
    public OptimizerOffload Offload { get; init; } = OptimizerOffload.None;

    /// <summary>AdamW as one fused kernel per parameter group (the same update and state): auto = on CUDA (unless
    /// bf16_moments, which the fused kernel cannot keep beside fp32 parameters), true, false. The fast path always
    /// uses the fused kernel (fused: false keeps a run off it).</summary>
    public FusedOptimizer Fused { get; init; } = FusedOptimizer.Auto;
}

public enum OptimizerOffload { None, Host }

public enum FusedOptimizer { Auto, True, False }

public enum ScheduleKind { Constant, Cosine, [RecipeKey("warmup_stable_decay")] WarmupStableDecay }

/// <summary>LR schedule. constant: warmup then flat. cosine: warmup then cosine to min_lr at max_steps.
/// warmup_stable_decay (DeepSeek-V3): warmup, flat until decay_start, cosine to min_lr at decay_end, then flat.</summary>
public sealed record SchedulerConfig
{
    public ScheduleKind Name { get; init; } = ScheduleKind.Cosine;
    public long WarmupSteps { get; init; } = 100;
    public double MinLr { get; init; } = 0.0;

    /// <summary>warmup_stable_decay only: first step of the cosine decay.</summary>
    public long? DecayStart { get; init; }

    /// <summary>warmup_stable_decay only: step where min_lr is reached (default max_steps).</summary>
    public long? DecayEnd { get; init; }
}

public sealed record CheckpointConfig
{
    /// <summary>Save every this many optimizer steps (and at the end); 0 = only at the end.</summary>
    public long EveryNSteps { get; init; } = 500;
    public int KeepLast { get; init; } = 3;

    /// <summary>false: no checkpoints and no final model are written (timing and memory runs of large models, whose
    /// checkpoints with optimizer state take hundreds of GB).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Resume from the run directory's latest complete checkpoint when one exists.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>Resume even when keys that shape the run (max_steps, optimizer, data, ...) differ from the config saved
    /// beside the checkpoint; by default such a resume is refused, naming the keys that changed.</summary>
    public bool AllowConfigChange { get; init; }
}

public enum ProgressMode { Auto, Bar, Plain }

public sealed record LoggingConfig
{
    /// <summary>Write metrics every this many optimizer steps.</summary>
    public long EveryNSteps { get; init; } = 1;
    public bool Tensorboard { get; init; } = true;

    /// <summary>auto: a progress bar on a terminal, plain log lines otherwise (CI, redirected output).</summary>
    public ProgressMode Progress { get; init; } = ProgressMode.Auto;

    /// <summary>Plain mode: seconds between progress lines.</summary>
    public double PlainIntervalSeconds { get; init; } = 10;
}

/// <summary>A training data set and how batches are cut from it.</summary>
public sealed record DataConfig
{
    public required string Path { get; init; }
    public string? Split { get; init; }
    public int MaxSeqLen { get; init; } = 2048;
    public int BatchSize { get; init; } = 8;
    public bool Shuffle { get; init; } = true;
    public bool Packed { get; init; } = false;
}
