// Config of the rm recipe (reward-model training on preference pairs): the shared sections plus the starting model,
// the pairs and the loss's knobs. A step = gradient_accumulation_steps micro-batches of data.batch_size pairs.
using PostTrain.Training.Recipes;

namespace PostTrain.Training.RewardModeling;

public sealed record RmConfig : TrainerConfig
{
    /// <summary>A causal-LM directory or built-in name (a score head is added, drawn from head_init_std), or a saved
    /// reward model directory (trained further).</summary>
    public required ModelConfigSection Model { get; init; }
    public required RmDataConfig Data { get; init; }

    /// <summary>TRL's center_rewards_coefficient: adds coef * mean((r_chosen + r_rejected)^2), keeping rewards near 0.
    /// 0 = off.</summary>
    public double CenterRewardsCoefficient { get; init; }

    /// <summary>Std of the new score head's normal init (seeded); unused when model.path is a saved reward model.</summary>
    public double HeadInitStd { get; init; } = 0.02;

    /// <summary>Aux-loss-free MoE balancing step per optimizer step (0 freezes the routing biases).</summary>
    public double MoeBiasGamma { get; init; } = 0.001;

    /// <summary>Sequence-wise balance loss weight alpha (0 = off).</summary>
    public double MoeBalanceAlpha { get; init; }
}

public sealed record RmDataConfig
{
    public required string Path { get; init; }

    /// <summary>Column names in the file (roles: prompt, chosen, rejected). String columns are a user turn and the
    /// assistant's answers; message lists are used as they are.</summary>
    public Dictionary<string, string> Columns { get; init; } = new();

    /// <summary>Optional per-pair margin column (a number m): the loss becomes -log sigmoid(r_c - r_r - m).</summary>
    public string? MarginColumn { get; init; }
    public bool SkipBadRows { get; init; }

    /// <summary>auto (the model's own template, else deepseek_v3) | model | model:NAME | deepseek_v3 | plain | a .jinja file.</summary>
    public string ChatTemplate { get; init; } = "auto";
    /// <summary>Template keyword arguments (enable_thinking, ...); values are read as JSON when they parse, else strings.</summary>
    public Dictionary<string, string> ChatTemplateKwargs { get; init; } = new();

    /// <summary>Pairs whose chosen or rejected rendering is longer than this are dropped (and counted).</summary>
    public int MaxSeqLen { get; init; } = 512;

    /// <summary>Pairs per micro-batch (each pair is two sequences).</summary>
    public int BatchSize { get; init; } = 16;
    public bool Shuffle { get; init; } = true;

    /// <summary>Held-out pairs for accuracy / margin / loss (null = none).</summary>
    public string? EvalPath { get; init; }
    public long EvalEveryNSteps { get; init; } = 50;

    /// <summary>Held-out pairs scored per evaluation (the first ones of the file); null = all.</summary>
    public int? EvalPairs { get; init; }
}
