// The tasks that ship with PostTrain, by name: arithmetic (datasets/arithmetic/test.parquet, math checker),
// countdown (datasets/countdown/test.parquet, countdown checker) and code (datasets/code/test.jsonl, code checker:
// reward = share of tests passed, solved = all pass; the language comes from each row's `tests`) and code-synth (the
// generated held-out split datasets/code/test.parquet: 400 functions never in training, categories "language/kind").
namespace PostTrain.Eval.Tasks;

public static class BuiltinTasks
{
    public static readonly IReadOnlyDictionary<string, Func<EvalTask>> ByName = new Dictionary<string, Func<EvalTask>>(StringComparer.Ordinal)
    {
        ["arithmetic"] = () => new EvalTask("arithmetic", "datasets/arithmetic/test.parquet", "math", EvalTask.NoOptions, Answers: "math"),
        ["countdown"] = () => new EvalTask("countdown", "datasets/countdown/test.parquet", "countdown", EvalTask.NoOptions, Answers: "countdown"),
        ["code"] = () => new EvalTask("code", "datasets/code/test.jsonl", "code", EvalTask.NoOptions, Answers: "code"),
        ["code-synth"] = () => new EvalTask("code-synth", "datasets/code/test.parquet", "code", EvalTask.NoOptions, Answers: "code"),
    };

    /// <summary>A built-in task by name, or a task file (.yaml/.yml/.json) when the argument is an existing path
    /// or has one of those extensions.</summary>
    public static EvalTask Resolve(string nameOrFile)
    {
        if (ByName.TryGetValue(nameOrFile, out var make)) return make();
        var ext = Path.GetExtension(nameOrFile).ToLowerInvariant();
        if (File.Exists(nameOrFile) || ext is ".yaml" or ".yml" or ".json") return EvalTaskFile.Load(nameOrFile);
        throw new EvalConfigException($"unknown task '{nameOrFile}': expected a built-in task ({string.Join(", ", ByName.Keys)}) or a task file (.yaml/.yml/.json)");
    }
}
