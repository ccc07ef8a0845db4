// Recipes that do not train (eval, pipeline) have no trainer keys: max_steps, optimizer.*, checkpoint.* are unknown
// keys there, named with the place they came from, as every other unknown key is.
using PostTrain.Eval.Recipe;
using PostTrain.Pipeline;
using PostTrain.Training.Recipes;

namespace PostTrain.Eval.Tests;

public sealed class RecipeKeyTests
{
    static RecipeKeyTests()
    {
        RecipeRegistry.Register(EvalRecipe.Info);
        RecipeRegistry.Register(PipelineRecipe.Info);
    }

    private static string Repo(string rel)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "PostTrain.sln"))) return Path.Combine(d.FullName, rel);
        throw new DirectoryNotFoundException("PostTrain.sln not found above " + AppContext.BaseDirectory);
    }

    [Theory]
    [InlineData("recipes/eval-quickstart.yaml")]
    [InlineData("recipes/pipeline-quickstart.yaml")]
    public void Trainer_keys_are_unknown_to_recipes_that_do_not_train(string recipe)
    {
        var e = Assert.Throws<RecipeConfigException>(() =>
            RecipeRunner.Resolve(Repo(recipe), ["optimizer.lr=5", "max_steps=7"]));
        Assert.Contains("max_steps: unknown key", e.Message);
        Assert.Contains("optimizer: unknown key", e.Message);
        Assert.Equal(2, e.Errors.Count);
        // the same file without them binds
        Assert.Equal(Path.GetFileNameWithoutExtension(recipe).Split('-')[0], RecipeRunner.Resolve(Repo(recipe), []).Recipe.Name);
    }
}
