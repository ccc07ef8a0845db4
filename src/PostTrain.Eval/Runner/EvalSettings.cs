// How an eval samples and scores. Settings that change what is generated (everything but Limit, Device and
// Progress) are saved to eval.json in the output folder; resuming with different values is an error naming the key,
// because samples already there would not match.
using System.Text.Json;
using System.Text.Json.Serialization;
using PostTrain.Training.Infra;

namespace PostTrain.Eval.Runner;

public sealed record EvalSettings
{
    /// <summary>Samples per problem at <see cref="Temperature"/> for pass@k and maj@k; 1 = greedy only.</summary>
    [JsonPropertyName("samples")] public int Samples { get; init; } = 1;
    [JsonPropertyName("temperature")] public double Temperature { get; init; } = 0.8;
    [JsonPropertyName("top_p")] public double TopP { get; init; } = 1.0;
    [JsonPropertyName("max_new_tokens")] public int MaxNewTokens { get; init; } = 256;
    [JsonPropertyName("seed")] public long Seed { get; init; } = 1234;
    /// <summary>Sequences per generation call (greedy: problems; sampled: problems x samples, rounded down to whole problems).</summary>
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 64;
    /// <summary>Seed of the bootstrap resampling.</summary>
    [JsonPropertyName("bootstrap_seed")] public ulong BootstrapSeed { get; init; } = 7;
    [JsonPropertyName("bootstrap_resamples")] public int BootstrapResamples { get; init; } = 2000;
    /// <summary>The chat template per model label: <c>plain</c> (BOS + prompt, the way a base model pre-trained on raw
    /// text reads it), <c>deepseek_v3</c>, <c>model</c> / <c>model:NAME</c> or a .jinja path; the label <c>*</c> covers
    /// every model not named. Unset = <c>auto</c> (the model folder's own template, else DeepSeek-V3's).</summary>
    [JsonPropertyName("chat_templates")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? ChatTemplates { get; init; }

    /// <summary>First N problems of each task (null = all). Raising it on resume adds problems.</summary>
    [JsonIgnore] public int? Limit { get; init; }
    /// <summary>cpu | cuda | cuda:N | auto (DeviceSelector).</summary>
    [JsonIgnore] public string Device { get; init; } = "auto";
    /// <summary>Failures shown per model and task in the HTML report.</summary>
    [JsonIgnore] public int FailuresShown { get; init; } = 20;

    public const string FileName = "eval.json";

    public void Validate()
    {
        if (Samples < 1) throw new EvalConfigException($"samples must be >= 1 (got {Samples})");
        if (Samples > 1 && !(Temperature > 0)) throw new EvalConfigException($"temperature must be > 0 when samples > 1 (got {Temperature})");
        if (MaxNewTokens < 1) throw new EvalConfigException($"max_new_tokens must be >= 1 (got {MaxNewTokens})");
        if (BatchSize < 1) throw new EvalConfigException($"batch_size must be >= 1 (got {BatchSize})");
        if (Limit is < 1) throw new EvalConfigException($"limit must be >= 1 (got {Limit})");
    }

    /// <summary>The chat template <paramref name="label"/>'s prompts are rendered with.</summary>
    public string TemplateFor(string label) =>
        ChatTemplates?.GetValueOrDefault(label) ?? ChatTemplates?.GetValueOrDefault(AllModels) ?? "auto";

    /// <summary>The chat_templates label for every model not named.</summary>
    public const string AllModels = "*";

    /// <summary>Checks that every chat_templates label names one of <paramref name="labels"/> (or is "*").</summary>
    public void CheckTemplateLabels(IReadOnlyCollection<string> labels)
    {
        foreach (var key in ChatTemplates?.Keys ?? [])
            if (key != AllModels && !labels.Contains(key))
                throw new EvalConfigException($"chat_templates.{key}: no model is labelled '{key}' (models: {string.Join(", ", labels)}; '{AllModels}' = every model not named)");
    }

    /// <summary>Writes eval.json, or checks the saved one matches (for a resumed eval).</summary>
    public void SaveOrCheck(string outputDir)
    {
        var path = Path.Combine(outputDir, FileName);
        var mine = JsonSerializer.SerializeToElement(this);
        if (File.Exists(path))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            foreach (var name in mine.EnumerateObject().Select(p => p.Name).Union(doc.RootElement.EnumerateObject().Select(p => p.Name)))
            {
                // compact text on both sides (the saved file is indented: an object value spans lines there)
                string saved = doc.RootElement.TryGetProperty(name, out var v) ? JsonSerializer.Serialize(v) : "(absent)";
                string now = mine.TryGetProperty(name, out var m) ? JsonSerializer.Serialize(m) : "(absent)";
                if (saved != now)
                    throw new EvalConfigException($"{path}: this output folder holds an eval with {name} = {saved}, not {now}; use another --output folder or the same settings");
            }
            return;
        }
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
