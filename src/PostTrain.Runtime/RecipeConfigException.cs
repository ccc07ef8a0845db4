// A recipe config that cannot be bound: every problem found (unknown keys, wrong types, missing values),
// each as "file:line:col: dotted.key: message", so one run reports them all.
namespace PostTrain.Runtime;

public sealed class RecipeConfigException(IReadOnlyList<string> errors)
    : Exception(errors.Count == 1 ? errors[0] : $"{errors.Count} config errors:\n  " + string.Join("\n  ", errors))
{
    public IReadOnlyList<string> Errors { get; } = errors;

    public RecipeConfigException(string error) : this([error]) { }
}
