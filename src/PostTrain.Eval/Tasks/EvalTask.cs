// An evaluation task: a dataset file, a prompt template over its columns, and a checker (any reward by name, with
// options) that scores each completion. A sample is "correct" when the checker's score is 1 (partial credit, e.g. a
// share of code tests, is kept as the reward but does not count as solved). `Answers` says how maj@k reads a
// completion's final answer (math, countdown, code or none).
namespace PostTrain.Eval.Tasks;

/// <param name="Name">Task name, used in reports and as part of each sample's key.</param>
/// <param name="Dataset">A .parquet or .jsonl file (absolute, or resolved by <see cref="DatasetLocator"/>).</param>
/// <param name="Checker">A reward name from RewardRegistry (built-in, plugin, or a .js/.csx path).</param>
/// <param name="CheckerOptions">The reward's options (unknown keys are errors for built-ins).</param>
/// <param name="PromptTemplate">Text with {column} placeholders ({{ and }} for literal braces); rendered as the user turn.</param>
/// <param name="SystemPrompt">Optional system turn.</param>
/// <param name="CategoryColumn">Column for the per-category breakdown; ignored when the dataset lacks it.</param>
/// <param name="Answers">math | countdown | code | none: how maj@k extracts an answer to vote on.</param>
/// <param name="StopStrings">Extra texts that end a completion (besides the tokenizer's end-of-sentence token).</param>
public sealed record EvalTask(
    string Name,
    string Dataset,
    string Checker,
    IReadOnlyDictionary<string, object?> CheckerOptions,
    string PromptTemplate = "{prompt}",
    string? SystemPrompt = null,
    string CategoryColumn = "category",
    string Answers = "none",
    IReadOnlyList<string>? StopStrings = null)
{
    public static readonly IReadOnlyList<string> AnswerKinds = ["math", "countdown", "code", "none"];

    public static readonly IReadOnlyDictionary<string, object?> NoOptions = new Dictionary<string, object?>();
}
