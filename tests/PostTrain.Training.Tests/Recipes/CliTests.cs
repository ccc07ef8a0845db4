// The `posttrain` verbs in-process: ls, cp, run, and exit codes for bad usage.
using PostTrain.Cli;
using PostTrain.Training.Tests.Infra;

namespace PostTrain.Training.Tests.Recipes;

[Collection(PostTrain.Training.Tests.Recipes.TorchGlobalRngCollection.Name)]
public sealed class CliTests
{
    private static async Task<(int Code, string Out, string Err)> Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task Ls_lists_recipes_with_their_commands()
    {
        var (code, stdout, _) = await Cli("ls");
        Assert.Equal(0, code);
        Assert.Contains("toy_regression  Linear regression on synthetic data", stdout);
        Assert.Contains("posttrain run recipes/toy_regression.yaml", stdout);
    }

    [Fact]
    public async Task Cp_copies_with_the_header_rewritten_and_refuses_to_overwrite()
    {
        using var tmp = new TempDir();
        var target = tmp["mine/toy.yaml"];
        var (code, stdout, _) = await Cli("cp", "toy_regression", target);
        Assert.Equal(0, code);
        Assert.Contains($"posttrain run {target}", stdout);
        var text = File.ReadAllText(target);
        Assert.StartsWith($"# posttrain run {target}\n#\n# Fits a linear model", text);
        Assert.Equal(File.ReadAllText(Training.Recipes.RecipeFiles.Locate("toy_regression.yaml")).Split('\n', 2)[1], text.Split('\n', 2)[1]);

        var again = await Cli("cp", "toy_regression", target);
        Assert.Equal(2, again.Code);
        Assert.Equal($"error: {target} already exists (use --force to overwrite)\n", again.Err);
        Assert.Equal(0, (await Cli("cp", "toy_regression", target, "--force")).Code);

        Assert.Equal(0, (await Cli("cp", "toy_regression", tmp.Path)).Code); // into a directory
        Assert.True(File.Exists(tmp["toy_regression.yaml"]));
    }

    [Fact]
    public async Task Bad_usage_exits_2_with_a_clear_message()
    {
        var none = await Cli();
        Assert.Equal(2, none.Code);
        Assert.Contains("Usage:", none.Out);

        var verb = await Cli("frob");
        Assert.Equal(2, verb.Code);
        Assert.Contains("Unrecognized command or argument 'frob'", verb.Err);

        var unknown = await Cli("cp", "toy_regresion", "x.yaml");
        Assert.Equal(2, unknown.Code);
        Assert.Contains("unknown recipe 'toy_regresion'; did you mean 'toy_regression'?", unknown.Err);

        var missingArg = await Cli("run");
        Assert.Equal(2, missingArg.Code);

        var badOverride = await Cli("run", "toy_regression", "optimizer.lr=abc", "optimizer.lrr=1");
        Assert.Equal(2, badOverride.Code);
        Assert.Equal("error: 2 config errors:\n" +
            "  override 'optimizer.lr=abc': optimizer.lr: expected a number, got 'abc'\n" +
            "  override 'optimizer.lrr=1': optimizer.lrr: unknown key; did you mean 'optimizer.lr'?\n", badOverride.Err);
    }

    [Fact]
    public async Task Run_trains_a_recipe_and_nan_losses_stop_with_exit_3()
    {
        using var tmp = new TempDir();
        var ok = await Cli("run", "toy_regression", $"output_dir={tmp["ok"]}", "max_steps=5", "scheduler.warmup_steps=2",
            "logging.progress=plain", "logging.tensorboard=false");
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains("step 5/5 (100.0%)", ok.Out);
        Assert.True(File.Exists(tmp["ok/step-000005/model/model.bin"]));

        // an infinite learning rate makes the weights, and then every loss, non-finite
        var nan = await Cli("run", "toy_regression", $"output_dir={tmp["nan"]}", "max_steps=50", "optimizer.lr=.inf",
            "scheduler.name=constant", "scheduler.warmup_steps=0", "scheduler.min_lr=0", "clip_grad_norm=null", "optimizer.name=sgd",
            "max_consecutive_nonfinite=3", "logging.progress=plain", "logging.tensorboard=false");
        Assert.True(nan.Code == 3, nan.Err);
        Assert.StartsWith("training stopped: step 3: loss is NaN for 3 steps in a row (max_consecutive_nonfinite = 3)", nan.Err);
    }
}
