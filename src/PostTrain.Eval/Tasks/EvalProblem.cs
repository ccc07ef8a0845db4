// One problem of a task: its position in the dataset (the key samples are stored under), the rendered prompt, the
// category (when the dataset has one) and the row's columns (handed to the checker).
using PostTrain.Data.Readers;

namespace PostTrain.Eval.Tasks;

public sealed record EvalProblem(int Index, string Prompt, string? Category, IReadOnlyDictionary<string, object?> Columns)
{
    /// <summary>The first <paramref name="limit"/> rows (all when null) of the task's dataset, rendered.</summary>
    public static IReadOnlyList<EvalProblem> Load(EvalTask task, int? limit = null)
    {
        if (limit is < 1) throw new EvalConfigException($"limit must be >= 1 (got {limit})");
        var path = DatasetLocator.Locate(task.Dataset, task.Name);
        var rows = DatasetReader.Read(path);
        if (limit is int n) rows = rows.Take(n);
        var problems = rows.Select((row, i) => new EvalProblem(i, PromptTemplate.Render(task.PromptTemplate, row, task.Name),
            row.Has(task.CategoryColumn) ? PromptTemplate.Format(row[task.CategoryColumn]) : null, row.Columns)).ToList();
        if (problems.Count == 0) throw new EvalConfigException($"task '{task.Name}': dataset '{path}' has no rows");
        return problems;
    }
}
