// Config of the grpo recipe: the shared sections plus the model, the prompts, the weighted rewards, the GRPO knobs
// (group size, clipping, KL, advantage/loss variants, dynamic sampling) and an optional held-out evaluation that is
// printed before and after training. Step = one rollout batch followed by `mu` optimizer updates on it.
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Grpo;

public sealed record GrpoConfig : TrainerConfig
{
    public required ModelConfigSection Model { get; init; }
    public required GrpoDataConfig Data { get; init; }

    /// <summary>The weighted rewards; a sample's reward is sum(weight * score) over the rewards that scored it.</summary>
    public required List<RewardConfig> Rewards { get; init; }

    /// <summary>Folder of reward plugins (*.js, *.csx); missing = none.</summary>
    public string? RewardsDir { get; init; } = "rewards";
    public double RewardTimeoutSeconds { get; init; } = 10;

    public GrpoAlgorithmConfig Grpo { get; init; } = new();

    /// <summary>LoRA adapters on the frozen model (as in sft): only they train; rollouts use the weights with the adapters
    /// folded in; with beta > 0 the reference policy is the same model with the adapters off (no second copy).</summary>
    public LoraConfig? Lora { get; init; }

    /// <summary>Aux-loss-free MoE balancing step per optimizer update (0 freezes the routing biases).</summary>
    public double MoeBiasGamma { get; init; } = 0.0;

    /// <summary>Write a sample of completions with their rewards every this many steps (0 = never).</summary>
    public long SamplesEveryNSteps { get; init; } = 10;
    /// <summary>Groups (prompts) written per sample file.</summary>
    public int SamplesGroups { get; init; } = 2;

    public GrpoEvalConfig? Eval { get; init; }
}

public sealed record GrpoDataConfig
{
    public required string Path { get; init; }
    public string PromptColumn { get; init; } = "prompt";
    /// <summary>auto (the model's own template, else deepseek_v3) | model | model:NAME | deepseek_v3 | plain | a .jinja file.</summary>
    public string ChatTemplate { get; init; } = "auto";
    /// <summary>Template keyword arguments (enable_thinking, ...); values are read as JSON when they parse, else strings.</summary>
    public Dictionary<string, string> ChatTemplateKwargs { get; init; } = new();
    public bool Shuffle { get; init; } = true;
    /// <summary>Prompts longer than this (in tokens) are skipped.</summary>
    public int MaxPromptTokens { get; init; } = 512;
}

public sealed record GrpoAlgorithmConfig
{
    /// <summary>B: prompts per step.</summary>
    public int PromptsPerStep { get; init; } = 8;
    /// <summary>G: completions sampled per prompt.</summary>
    public int NumGenerations { get; init; } = 8;
    /// <summary>mu: optimizer updates per rollout batch (each a pass over the whole batch).</summary>
    public int Mu { get; init; } = 1;
    /// <summary>Sequences per forward/backward (gradient accumulation inside an update).</summary>
    public int MicroBatchSize { get; init; } = 16;
    public int MaxCompletionLength { get; init; } = 256;

    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    public int TopK { get; init; }
    public double MinP { get; init; }

    /// <summary>KL coefficient; 0 loads no reference model.</summary>
    public double Beta { get; init; }
    public double EpsilonLow { get; init; } = 0.2;
    /// <summary>Upper clip; 0.28 = DAPO's clip-higher.</summary>
    public double EpsilonHigh { get; init; } = 0.2;

    public AdvantageScaling AdvantageScaling { get; init; } = AdvantageScaling.Group;
    public double AdvantageEps { get; init; } = 1e-4;
    /// <summary>grpo (per-sequence mean), dapo (token mean), dr_grpo (constant normaliser).</summary>
    public LossAggregation LossAggregation { get; init; } = LossAggregation.SequenceMean;
    /// <summary>token (GRPO) or sequence (GSPO).</summary>
    public ImportanceLevel ImportanceSampling { get; init; } = ImportanceLevel.Token;
    public bool MaskTruncatedCompletions { get; init; }

    /// <summary>none: PPO's ratio against the sampler's log-probs. tis / mis: the ratio against the trainer's log-probs
    /// before the update, and each token weighted by pi_old / pi_rollout truncated at the cap (tis) or masked outside
    /// [1/cap, cap] (mis). See RolloutCorrection.</summary>
    public RolloutCorrectionMode RolloutCorrection { get; init; } = RolloutCorrectionMode.None;

    /// <summary>Routing replay (R3): the training forward routes every token to the experts it was routed to while
    /// sampling (gate weights recomputed from the current router, so the router still learns).</summary>
    public bool RoutingReplay { get; init; }
    public double RolloutCorrectionCap { get; init; } = 2.0;
    /// <summary>token: a ratio per token; sequence: the geometric mean of the sequence's token ratios.</summary>
    public ImportanceLevel RolloutCorrectionLevel { get; init; } = ImportanceLevel.Token;

    /// <summary>DAPO: drop groups with equal rewards and sample more prompts, up to max_sampling_rounds rounds.</summary>
    public bool DynamicSampling { get; init; }
    public int MaxSamplingRounds { get; init; } = 3;
}

/// <summary>Held-out evaluation: greedy completions of the first `rows` prompts, scored by `rewards`; the mean total
/// (the accuracy for a 0/1 reward such as math) is printed before and after training.</summary>
public sealed record GrpoEvalConfig
{
    public required string Path { get; init; }
    public int Rows { get; init; } = 100;
    public int? MaxNewTokens { get; init; }
    /// <summary>Also sample this many completions per prompt at grpo.temperature and report their mean (the sampled
    /// policy's accuracy, what GRPO optimises); 0 = greedy only.</summary>
    public int Samples { get; init; }
    /// <summary>Also evaluate every this many steps during training (0 = only before and after).</summary>
    public long EveryNSteps { get; init; }
    public List<RewardConfig> Rewards { get; init; } = [new() { Name = "math" }];
}
