// Config of the distill recipe (R1-style distillation data): the teacher (a local PostTrain model or an
// OpenAI-compatible endpoint), the problems, how each is sampled (k samples, reasoning template), the rewards that
// verify a sample, the filters, decontamination against eval sets and the sharded output. The shared training
// sections of RecipeConfig (optimizer, scheduler, checkpoint, max_steps) are not used by this recipe.
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Distill;

public enum TeacherKind { Local, [RecipeKey("openai")] OpenAi }

/// <summary>none: the prompt as it is, the whole completion is the answer (models trained without reasoning tags).
/// think: a system prompt asks for &lt;think&gt;...&lt;/think&gt; then the answer (R1 style).</summary>
public enum ReasoningFormat { None, Think }

public sealed record DistillConfig : RecipeConfig
{
    public required TeacherConfig Teacher { get; init; }
    public required DistillDataConfig Data { get; init; }
    public DistillSamplingConfig Sampling { get; init; } = new();

    /// <summary>The weighted rewards that verify a sample (the same list as grpo's).</summary>
    public required List<RewardConfig> Rewards { get; init; }
    public string? RewardsDir { get; init; } = "rewards";
    public double RewardTimeoutSeconds { get; init; } = 10;

    public DistillFilterConfig Filters { get; init; } = new();
    public DecontaminationConfig? Decontamination { get; init; }
    public DistillOutputConfig Output { get; init; } = new();
}

public sealed record TeacherConfig
{
    public TeacherKind Kind { get; init; } = TeacherKind.Local;

    // local: a PostTrain/Hugging Face model directory or a built-in name, run by the generation engine
    public string? Path { get; init; }
    public string? Tokenizer { get; init; }
    public string Device { get; init; } = "auto";
    public DTypeName Dtype { get; init; } = DTypeName.Float32;
    /// <summary>auto (the teacher's own template, else deepseek_v3) | model | model:NAME | deepseek_v3 | plain | a .jinja file.</summary>
    public string ChatTemplate { get; init; } = "auto";
    /// <summary>Template keyword arguments (enable_thinking, ...); values are read as JSON when they parse, else strings.</summary>
    public Dictionary<string, string> ChatTemplateKwargs { get; init; } = new();
    /// <summary>Local: sequences per generation call (problems x samples are cut into calls of at most this many).</summary>
    public int BatchSize { get; init; } = 256;

    // openai: any OpenAI-compatible chat completions endpoint (vLLM, SGLang, hosted, posttrain serve)
    public string? BaseUrl { get; init; }
    public string? Model { get; init; }
    /// <summary>Name of the environment variable holding the API key (never the key itself); null = no key.</summary>
    public string? ApiKeyEnv { get; init; }
    public int MaxConcurrency { get; init; } = 16;
    public double TimeoutSeconds { get; init; } = 300;
    public int MaxRetries { get; init; } = 6;
    public double InitialBackoffSeconds { get; init; } = 1;
    public double MaxBackoffSeconds { get; init; } = 60;
    /// <summary>Send a per-sample seed (reproducible sampling where the server honours it).</summary>
    public bool SendSeed { get; init; } = true;
}

public sealed record DistillDataConfig
{
    /// <summary>A .jsonl/.parquet file, a directory of them or a file-name pattern.</summary>
    public required string Path { get; init; }
    public string PromptColumn { get; init; } = "prompt";
    /// <summary>Column with a problem id for the output (null = "file:row").</summary>
    public string? IdColumn { get; init; }
    /// <summary>Use only the first this many problems (after decontamination); null = all.</summary>
    public int? MaxProblems { get; init; }
}

public sealed record DistillSamplingConfig
{
    /// <summary>k: samples drawn per problem.</summary>
    public int SamplesPerProblem { get; init; } = 4;
    public double Temperature { get; init; } = 0.6;
    public double TopP { get; init; } = 0.95;
    public int MaxTokens { get; init; } = 4096;
    public ReasoningFormat ReasoningFormat { get; init; } = ReasoningFormat.Think;
    /// <summary>null = the format's default (think: the R1 instruction; none: no system prompt); "" = none.</summary>
    public string? SystemPrompt { get; init; }
    /// <summary>The user turn; {prompt} is replaced by the problem's prompt.</summary>
    public string PromptTemplate { get; init; } = "{prompt}";
}

/// <summary>Filters; a rejected sample is counted under the first check it fails, in the order listed here.</summary>
public sealed record DistillFilterConfig
{
    /// <summary>A sample passes verification when its weighted reward is at least this.</summary>
    public double MinReward { get; init; } = 1.0;
    public int MinCompletionTokens { get; init; } = 1;
    /// <summary>Reject samples cut off by sampling.max_tokens (an unfinished trace) as too long.</summary>
    public bool RejectTruncated { get; init; } = true;
    /// <summary>null = no limit besides sampling.max_tokens.</summary>
    public int? MaxCompletionTokens { get; init; }
    /// <summary>The answer must contain \boxed{...}.</summary>
    public bool RequireBoxed { get; init; }
    /// <summary>Reject when the share of repeated word n-grams (the repetition reward's measure) exceeds this; null = off.</summary>
    public double? MaxRepetition { get; init; } = 0.5;
    public int RepetitionNgram { get; init; } = 3;
    /// <summary>Target language of the reasoning (the language reward's scripts); null = off.</summary>
    public string? Language { get; init; } = "en";
    public double MinLanguageShare { get; init; } = 0.95;
    /// <summary>Drop samples whose normalised text equals an earlier kept one of the same problem.</summary>
    public bool Dedup { get; init; } = true;
    public int MaxKeptPerProblem { get; init; } = 4;
    /// <summary>Keep a problem's samples only if min_pass_rate &lt;= mean reward over its k samples &lt;= max_pass_rate.</summary>
    public double MinPassRate { get; init; } = 0.0;
    public double MaxPassRate { get; init; } = 1.0;
}

/// <summary>Drop problems sharing a word n-gram with any eval set text.</summary>
public sealed record DecontaminationConfig
{
    public List<string> Paths { get; init; } = [];
    public string Column { get; init; } = "prompt";
    public int Ngram { get; init; } = 13;
}

public sealed record DistillOutputConfig
{
    /// <summary>Problems per Parquet shard (a shard and the state file are written after each).</summary>
    public int ProblemsPerShard { get; init; } = 100;
    /// <summary>Put the system prompt in the output's messages (default: user prompt + trace only).</summary>
    public bool IncludeSystemPrompt { get; init; }
    /// <summary>Continue from output_dir/state.json when it is there (false: delete the old shards and start over).</summary>
    public bool Resume { get; init; } = true;
}
