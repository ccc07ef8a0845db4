// Supervised fine-tuning config: the shared sections plus the model, the data and SFT's own switches.
namespace PostTrain.Training.Recipes;

public enum SftFormat { [RecipeKey("prompt_completion")] PromptCompletion, Messages, Text }
public enum TrainOn { Completion, All }

public sealed record SftConfig : TrainerConfig
{
    public required ModelConfigSection Model { get; init; }
    public required SftDataConfig Data { get; init; }

    /// <summary>Weight of the multi-token-prediction loss (lambda; 0 = MTP modules not trained).</summary>
    public double MtpLambda { get; init; } = 0.3;

    /// <summary>Aux-loss-free balancing step per optimizer step (0 freezes the routing biases).</summary>
    public double MoeBiasGamma { get; init; } = 0.001;

    /// <summary>Sequence-wise balance loss weight alpha (0 = off).</summary>
    public double MoeBalanceAlpha { get; init; } = 0.0;

    /// <summary>Train LoRA adapters instead of the whole model (null = full fine-tuning).</summary>
    public LoraConfig? Lora { get; init; }
}

/// <summary>LoRA: W + (alpha / rank) B A on the target modules (module names as in the checkpoint), dropout on A's input.
/// Checkpoints and the final model are PEFT adapter directories; `posttrain merge` folds one into a full model, and any
/// model.path may name an adapter directory (its base is loaded and the adapter folded in).</summary>
public sealed record LoraConfig
{
    public int Rank { get; init; } = 16;
    public double Alpha { get; init; } = 32;
    public double Dropout { get; init; } = 0.05;
    public List<string> TargetModules { get; init; } = [.. PostTrain.Core.Model.LoraSettings.AttentionModules];

    /// <summary>Also adapt the routed experts' projections named in target_modules (gate_proj, up_proj, down_proj) with a
    /// grouped LoRA per expert stack; by default those names adapt only the dense and shared-expert MLPs.</summary>
    public bool RoutedExperts { get; init; }

    /// <summary>How the MLP adapters are saved: fused_experts (peft with transformers 5: routed experts as LoRA on the fused
    /// mlp.experts.gate_up_proj / down_proj, dense and shared-expert MLPs as target_parameters) or per_expert (transformers
    /// 4's per-expert module names). Either layout loads back (resume, merge, model.path).</summary>
    public PostTrain.Core.Model.PeftLayout PeftLayout { get; init; } = PostTrain.Core.Model.PeftLayout.FusedExperts;

    public PostTrain.Core.Model.LoraSettings ToSettings() => new(Rank, Alpha, Dropout, TargetModules, RoutedExperts, PeftLayout);
}

public sealed record SftDataConfig
{
    public required string Path { get; init; }
    public SftFormat Format { get; init; } = SftFormat.PromptCompletion;
    /// <summary>Column names in the file (keys: prompt, completion, messages, text).</summary>
    public Dictionary<string, string> Columns { get; init; } = new();
    public bool SkipBadRows { get; init; }
    /// <summary>completion: loss on the assistant's tokens only; all: on every token.</summary>
    public TrainOn TrainOn { get; init; } = TrainOn.Completion;
    /// <summary>auto (the model's own template, else deepseek_v3) | model | model:NAME | deepseek_v3 | plain | a .jinja file.</summary>
    public string ChatTemplate { get; init; } = "auto";
    /// <summary>Template keyword arguments (enable_thinking, ...); values are read as JSON when they parse, else strings.</summary>
    public Dictionary<string, string> ChatTemplateKwargs { get; init; } = new();
    public int MaxSeqLen { get; init; } = 512;
    public int BatchSize { get; init; } = 8;
    public bool Shuffle { get; init; } = true;
    public bool Packed { get; init; } = true;

    /// <summary>Held-out split for evaluation loss (null = none).</summary>
    public string? EvalPath { get; init; }
    public long EvalEveryNSteps { get; init; } = 50;
    public int EvalBatches { get; init; } = 8;
}
