// The explicit list of built-in recipes (`posttrain ls`). Adding a recipe = its config record, its class, its
// YAML in recipes/ (first line: "# posttrain run recipes/<file>") and one line here.
namespace PostTrain.Training.Recipes;

public static class RecipeRegistry
{
    private static readonly List<RecipeInfo> Extra = [];
    private static readonly object Gate = new();

    /// <summary>Built-in recipes, then those registered by higher layers (e.g. eval, whose project depends on this one).</summary>
    public static IReadOnlyList<RecipeInfo> All { get { lock (Gate) return [.. Builtin, .. Extra]; } }

    /// <summary>Adds a recipe defined in a project above this one; registering the same name again is a no-op.</summary>
    public static void Register(RecipeInfo info)
    {
        lock (Gate)
            if (!Builtin.Concat(Extra).Any(r => r.Name == info.Name)) Extra.Add(info);
    }

    private static readonly IReadOnlyList<RecipeInfo> Builtin =
    [
        RecipeInfo.Of<ToyRegressionConfig>("toy_regression",
            "Linear regression on synthetic data (CPU, seconds): a worked example of schedules, metrics, checkpoints and resume",
            "toy_regression.yaml", c => new ToyRegressionRecipe(c)),
        RecipeInfo.Of<SftConfig>("sft",
            "Supervised fine-tuning (prompt/completion, chat or text; packing; loss on the assistant's tokens)",
            "sft-quickstart.yaml", c => new PostTrain.Training.Sft.SftRecipe(c)),
        RecipeInfo.Of<PostTrain.Training.Distill.DistillConfig>("distill",
            "R1-style distillation data: teacher samples (local model or OpenAI-compatible endpoint) verified by rewards, filtered, as an SFT dataset",
            "distill-quickstart.yaml", c => new PostTrain.Training.Distill.DistillRecipe(c)),
        RecipeInfo.Of<PostTrain.Training.Grpo.GrpoConfig>("grpo",
            "GRPO (DeepSeekMath) with Dr. GRPO / DAPO / GSPO options: sample groups, score with weighted rewards, clipped policy updates",
            "grpo-arith.yaml", c => new PostTrain.Training.Grpo.GrpoRecipe(c)),
    ];

    public static RecipeInfo? Find(string name) => All.FirstOrDefault(r => r.Name == name);

    /// <summary>The recipe, or an error naming the closest registered one.</summary>
    public static RecipeInfo Get(string name, string where) =>
        Find(name) ?? throw new RecipeConfigException(
            $"{where}: unknown recipe '{name}'" +
            (KeyNames.Closest(name, All.Select(r => r.Name)) is { } close ? $"; did you mean '{close}'?" : "") +
            $" (built-in: {string.Join(", ", All.Select(r => r.Name))}; see posttrain ls)");
}
