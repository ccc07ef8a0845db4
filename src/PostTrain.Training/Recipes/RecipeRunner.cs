// `posttrain run <recipe.yaml|name> [key=value ...]`: resolve the YAML (a file, or a built-in recipe's file),
// apply overrides, bind it to the config type of the recipe its `recipe:` key names, print the resolved config,
// save it as <output_dir>/resolved_config.yaml, then run the recipe.
using PostTrain.Training.Infra;

namespace PostTrain.Training.Recipes;

public static class RecipeRunner
{
    public const string ResolvedConfigFileName = "resolved_config.yaml";

    /// <summary>The YAML path for a file argument or a registered recipe name.</summary>
    public static string ResolvePath(string recipeOrPath)
    {
        if (File.Exists(recipeOrPath)) return recipeOrPath;
        if (recipeOrPath.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || recipeOrPath.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
            || recipeOrPath.Contains('/') || recipeOrPath.Contains('\\'))
            throw new RecipeConfigException($"{recipeOrPath}: recipe file not found");
        return RecipeFiles.Locate(RecipeRegistry.Get(recipeOrPath, "posttrain run").YamlFile);
    }

    /// <summary>Parses and binds without running: the recipe and its config.</summary>
    public static (RecipeInfo Recipe, RecipeConfig Config, string ResolvedYaml) Resolve(string path, IReadOnlyList<string> overrides)
    {
        var doc = RecipeDocument.FromFile(path, overrides);
        var name = doc.RecipeName ?? throw new RecipeConfigException(
            $"{path}: recipe: missing required value (the recipe that runs this file: {string.Join(", ", RecipeRegistry.All.Select(r => r.Name))})");
        var info = RecipeRegistry.Get(name, doc.WhereKey("recipe"));
        var config = (RecipeConfig)doc.Bind(info.ConfigType);
        var header = $"resolved config: posttrain run {path}{string.Concat(overrides.Select(o => " " + o))}";
        return (info, config, ConfigYamlWriter.Write(config, header));
    }

    public static async Task<int> RunAsync(string recipeOrPath, IReadOnlyList<string> overrides, TextWriter log, CancellationToken ct)
    {
        var path = ResolvePath(recipeOrPath);
        var (info, config, yaml) = Resolve(path, overrides);
        log.Write(yaml);
        log.WriteLine();
        Directory.CreateDirectory(config.OutputDir);
        AtomicFile.WriteAllText(Path.Combine(config.OutputDir, ResolvedConfigFileName), yaml);
        var recipe = info.Create(config);
        return await recipe.RunAsync(new RecipeContext(path, yaml, log), ct);
    }
}
