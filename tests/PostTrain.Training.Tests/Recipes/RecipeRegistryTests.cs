// Every shipped recipe YAML is registered, starts with the exact command that runs it, and binds to its
// recipe's config type; the runner resolves names and paths and rejects unknown recipes helpfully.
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Tests.Recipes;

public sealed class RecipeRegistryTests
{
    private static string RepoRecipes() => RepoPaths.Of("recipes");

    public static TheoryData<string> ShippedFiles() => new(Directory.GetFiles(RepoRecipes(), "*.yaml").Select(Path.GetFileName)!);

    [Theory]
    [MemberData(nameof(ShippedFiles))]
    public void Shipped_recipe_has_its_command_as_header_and_parses(string file)
    {
        var path = Path.Combine(RepoRecipes(), file);
        var text = File.ReadAllText(path);
        Assert.Equal($"posttrain run recipes/{file}", RecipeFiles.HeaderCommand(text));

        PostTrain.Cli.CliApp.RegisterRecipes();
        // the file's `recipe:` key names a registered recipe (a recipe may ship several YAML files)
        var doc = RecipeDocument.FromFile(path);
        var info = Assert.Single(RecipeRegistry.All, r => r.Name == doc.RecipeName);
        var config = Assert.IsAssignableFrom<RecipeConfig>(doc.Bind(info.ConfigType));
        Assert.IsType(info.ConfigType, config);
        // copied beside the binaries, identical
        Assert.Equal(text, File.ReadAllText(RecipeFiles.Locate(file)));
    }

    [Fact]
    public void Every_registered_recipe_ships_a_yaml_and_names_are_unique()
    {
        Assert.NotEmpty(RecipeRegistry.All);
        Assert.Equal(RecipeRegistry.All.Count, RecipeRegistry.All.Select(r => r.Name).Distinct().Count());
        Assert.All(RecipeRegistry.All, r => Assert.True(File.Exists(Path.Combine(RepoRecipes(), r.YamlFile)), r.YamlFile));
    }

    [Fact]
    public void Runner_resolves_names_and_rejects_unknown_recipes()
    {
        Assert.EndsWith(Path.Combine("recipes", "toy_regression.yaml"), RecipeRunner.ResolvePath("toy_regression"));
        Assert.Equal($"posttrain run: unknown recipe 'toy_regresion'; did you mean 'toy_regression'? (built-in: {string.Join(", ", RecipeRegistry.All.Select(r => r.Name))}; see posttrain ls)",
            Assert.Throws<RecipeConfigException>(() => RecipeRunner.ResolvePath("toy_regresion")).Message);
        Assert.Equal("nope/x.yaml: recipe file not found",
            Assert.Throws<RecipeConfigException>(() => RecipeRunner.ResolvePath("nope/x.yaml")).Message);

        using var tmp = new Infra.TempDir();
        File.WriteAllText(tmp["a.yaml"], "recipe: toy_regresion\noutput_dir: x\n");
        Assert.StartsWith($"{tmp["a.yaml"]}:1:9: recipe: unknown recipe 'toy_regresion'; did you mean 'toy_regression'?",
            Assert.Throws<RecipeConfigException>(() => RecipeRunner.Resolve(tmp["a.yaml"], [])).Message);
        File.WriteAllText(tmp["b.yaml"], "output_dir: x\n");
        Assert.StartsWith($"{tmp["b.yaml"]}: recipe: missing required value",
            Assert.Throws<RecipeConfigException>(() => RecipeRunner.Resolve(tmp["b.yaml"], [])).Message);
    }

    [Fact]
    public void Sft_config_binds_the_shared_sections()
    {
        var c = RecipeDocument.FromText("""
            recipe: sft
            output_dir: runs/sft
            model: {path: /models/tiny, dtype: float32}
            data: {path: data/train.jsonl, max_seq_len: 512}
            scheduler: {name: warmup_stable_decay, warmup_steps: 10, decay_start: 800, decay_end: 950, min_lr: 1.0e-5}
            """, "sft.yaml").Bind<SftConfig>();
        Assert.Equal(DTypeName.Float32, c.Model.Dtype);
        Assert.Equal(512, c.Data.MaxSeqLen);
        Assert.Equal(8, c.Data.BatchSize);
        Assert.Equal(800L, c.Scheduler.DecayStart);
        Assert.Equal(ScheduleKind.WarmupStableDecay, c.Scheduler.Name);
        var ex = Assert.Throws<RecipeConfigException>(() => RecipeDocument.FromText("recipe: sft\noutput_dir: o\n", "sft.yaml").Bind<SftConfig>());
        Assert.Equal(["sft.yaml:1:1: model: missing required value", "sft.yaml:1:1: data: missing required value"], ex.Errors);
    }
}
