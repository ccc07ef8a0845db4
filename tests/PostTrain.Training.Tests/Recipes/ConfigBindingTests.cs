// Recipe YAML -> typed config: defaults, overrides with typed parsing, and errors that name file, line, key.
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Tests.Recipes;

public sealed class ConfigBindingTests
{
    public enum Mode { Fast, [RecipeKey("extra_slow")] VerySlow }

    public sealed record Inner
    {
        public int Count { get; init; } = 7;
        public IReadOnlyList<int> Sizes { get; init; } = [1];
        public Mode Mode { get; init; } = Mode.Fast;
    }

    public sealed record TestConfig : TrainerConfig
    {
        public required ModelConfigSection Model { get; init; }
        public Inner Inner { get; init; } = new();
        public string? Note { get; init; } = "default note";
        [RecipeKey("lr_mult")] public double LearningRateMultiplier { get; init; } = 1.0;
        public Dictionary<string, double> Weights { get; init; } = new();
    }

    private const string Yaml = """
        # posttrain run test.yaml
        recipe: test
        output_dir: /tmp/run
        model:
          path: /models/tiny
        optimizer:
          lr: 0.001
          betas: [0.8, 0.99]
        inner:
          sizes: [2, 3]
        weights:
          a: 0.5
        """;

    private static TestConfig Load(string yaml, params string[] overrides) =>
        RecipeDocument.FromText(yaml, "test.yaml", overrides).Bind<TestConfig>();

    private static string Error(string yaml, params string[] overrides) =>
        Assert.Throws<RecipeConfigException>(() => Load(yaml, overrides)).Message;

    [Fact]
    public void Binds_values_and_keeps_defaults_for_absent_keys()
    {
        var c = Load(Yaml);
        Assert.Equal("test", c.Recipe);
        Assert.Equal("/models/tiny", c.Model.Path);
        Assert.Equal(DTypeName.Bfloat16, c.Model.Dtype);
        Assert.Equal(0.001, c.Optimizer.Lr);
        Assert.Equal([0.8, 0.99], c.Optimizer.Betas);
        Assert.Equal(0.1, c.Optimizer.WeightDecay);
        Assert.Equal(7, c.Inner.Count);
        Assert.Equal([2, 3], c.Inner.Sizes);
        Assert.Equal("default note", c.Note);
        Assert.Equal(0.5, c.Weights["a"]);
        Assert.Equal(1000, c.MaxSteps);
    }

    [Fact]
    public void Overrides_parse_typed_values()
    {
        var c = Load(Yaml, "optimizer.lr=2e-5", "max_steps=42", "checkpoint.resume=false", "inner.sizes=[4,5,6]",
            "note=null", "inner.mode=extra_slow", "scheduler.name=warmup_stable_decay", "lr_mult=3",
            "model.device=cpu", "clip_grad_norm=null", "scheduler.decay_start=80", "model.tokenizer='null'");
        Assert.Equal(2e-5, c.Optimizer.Lr);
        Assert.Equal(42, c.MaxSteps);
        Assert.False(c.Checkpoint.Resume);
        Assert.Equal([4, 5, 6], c.Inner.Sizes);
        Assert.Null(c.Note);
        Assert.Equal(Mode.VerySlow, c.Inner.Mode);
        Assert.Equal(ScheduleKind.WarmupStableDecay, c.Scheduler.Name);
        Assert.Equal(3.0, c.LearningRateMultiplier);
        Assert.Equal("cpu", c.Model.Device);
        Assert.Null(c.ClipGradNorm);
        Assert.Equal(80L, c.Scheduler.DecayStart);
        Assert.Equal("null", c.Model.Tokenizer);
        Assert.Equal([0.8, 0.99], c.Optimizer.Betas); // untouched sibling keeps the file's value
    }

    [Fact]
    public void Override_creates_missing_sections()
    {
        var c = Load("recipe: t\noutput_dir: o\nmodel: {path: p}\n", "inner.count=9");
        Assert.Equal(9, c.Inner.Count);
        Assert.Equal([1], c.Inner.Sizes);
    }

    [Fact]
    public void Wrong_type_names_key_file_and_line()
    {
        var msg = Error(Yaml.Replace("lr: 0.001", "lr: abc"));
        Assert.Equal("test.yaml:7:7: optimizer.lr: expected a number, got 'abc'", msg);
    }

    [Fact]
    public void Wrong_type_in_override_names_the_override()
    {
        var msg = Error(Yaml, "optimizer.lr=abc");
        Assert.Equal("override 'optimizer.lr=abc': optimizer.lr: expected a number, got 'abc'", msg);
    }

    [Fact]
    public void Integer_list_bool_and_enum_errors()
    {
        Assert.Equal("override 'max_steps=1.5': max_steps: expected an integer, got '1.5'", Error(Yaml, "max_steps=1.5"));
        Assert.Equal("override 'checkpoint.resume=maybe': checkpoint.resume: expected true or false, got 'maybe'",
            Error(Yaml, "checkpoint.resume=maybe"));
        Assert.Equal("override 'inner.sizes=[1,x]': inner.sizes[1]: expected an integer, got 'x'", Error(Yaml, "inner.sizes=[1,x]"));
        Assert.Equal("override 'inner.sizes=3': inner.sizes: expected a list of an integer, got '3'", Error(Yaml, "inner.sizes=3"));
        Assert.Equal("override 'scheduler.name=cosin': scheduler.name: expected one of constant, cosine, warmup_stable_decay, got 'cosin'; did you mean 'cosine'?",
            Error(Yaml, "scheduler.name=cosin"));
        Assert.Equal("override 'max_steps=null': max_steps: expected an integer, got null", Error(Yaml, "max_steps=null"));
        Assert.Equal("override 'optimizer=3': optimizer: expected a section, got '3'", Error(Yaml, "optimizer=3"));
    }

    [Fact]
    public void Unknown_key_suggests_the_closest_valid_key()
    {
        Assert.Equal("test.yaml:7:3: optimizer.lrr: unknown key; did you mean 'optimizer.lr'?", Error(Yaml.Replace("lr: 0.001", "lrr: 0.001")));
        // transposition counts as one edit (Damerau)
        Assert.Equal("override 'optimizer.wieght_decay=0': optimizer.wieght_decay: unknown key; did you mean 'optimizer.weight_decay'?",
            Error(Yaml, "optimizer.wieght_decay=0"));
        // a leaf name given at the wrong level points to where it lives
        Assert.Equal("override 'warmup_steps=5': warmup_steps: unknown key; did you mean 'scheduler.warmup_steps'?", Error(Yaml, "warmup_steps=5"));
        Assert.StartsWith("override 'inner.zzzzzz=1': inner.zzzzzz: unknown key (valid keys under 'inner': count, sizes, mode)", Error(Yaml, "inner.zzzzzz=1"));
    }

    [Fact]
    public void Missing_required_values_are_reported_together()
    {
        var ex = Assert.Throws<RecipeConfigException>(() => Load("recipe: t\nmodel:\n  dtype: float32\n"));
        Assert.Equal(
        [
            "test.yaml:3:3: model.path: missing required value",
            "test.yaml:1:1: output_dir: missing required value",
        ], ex.Errors);
    }

    [Fact]
    public void Invalid_yaml_and_bad_override_syntax()
    {
        var msg = Error("recipe: t\noptimizer:\n  lr: [1, 2\n");
        Assert.StartsWith("test.yaml:", msg);
        Assert.Contains("invalid YAML", msg);
        Assert.Equal("override 'optimizer.lr': expected key=value, e.g. optimizer.lr=1e-4", Error(Yaml, "optimizer.lr"));
        Assert.Equal("override '.lr=1': expected key=value, e.g. optimizer.lr=1e-4", Error(Yaml, ".lr=1"));
    }

    [Fact]
    public void Recipe_name_is_read_after_overrides()
    {
        Assert.Equal("test", RecipeDocument.FromText(Yaml, "t.yaml").RecipeName);
        Assert.Equal("other", RecipeDocument.FromText(Yaml, "t.yaml", ["recipe=other"]).RecipeName);
        Assert.Null(RecipeDocument.FromText("a: 1", "t.yaml").RecipeName);
    }

    [Fact]
    public void Resolved_yaml_round_trips_to_an_equal_config()
    {
        var c = Load(Yaml, "note=null", "optimizer.lr=1e-05", "model.tokenizer=''");
        var yaml = ConfigYamlWriter.Write(c, "resolved from test.yaml");
        Assert.StartsWith("# resolved from test.yaml\nrecipe: test\noutput_dir: /tmp/run\nseed: 1234\n", yaml);
        Assert.Contains("\n  lr: 1E-05\n", yaml);
        Assert.Contains("\n  betas: [0.8, 0.99]\n", yaml);
        Assert.Contains("\nnote: null\n", yaml);
        Assert.Contains("\n  mode: fast\n", yaml);
        var back = RecipeDocument.FromText(yaml, "resolved.yaml").Bind<TestConfig>();
        Assert.Equal(yaml, ConfigYamlWriter.Write(back, "resolved from test.yaml"));
        Assert.Equal("", back.Model.Tokenizer);
        Assert.Null(back.Note);
        Assert.Equal(c.Optimizer.Lr, back.Optimizer.Lr);
    }

    [Theory]
    [InlineData("MaxSeqLen", "max_seq_len")]
    [InlineData("LRScale", "lr_scale")]
    [InlineData("Beta2", "beta2")]
    [InlineData("OutputDir", "output_dir")]
    [InlineData("Lr", "lr")]
    public void Snake_case_names(string name, string expected) => Assert.Equal(expected, KeyNames.SnakeCase(name));

    [Theory]
    [InlineData("lr", "lr", 0)]
    [InlineData("lr", "lrr", 1)]
    [InlineData("wieght", "weight", 1)] // one swap
    [InlineData("kitten", "sitting", 3)]
    [InlineData("ca", "abc", 3)] // OSA distance (true Damerau-Levenshtein would say 2)
    [InlineData("", "abc", 3)]
    public void Damerau_distance(string a, string b, int expected) => Assert.Equal(expected, KeyNames.Distance(a, b));
}
