// The problems to distill: every row of data.path (file, directory or pattern) with its prompt, an id and all its
// columns (rewards read e.g. `answer`), minus those that overlap an eval set (decontamination), cut to max_problems.
// A problem's index in this list fixes its shard and its sampling seeds, so the list must be (and is) a pure function
// of the config and the files (a resumed run assumes the files did not change).
using PostTrain.Data;
using PostTrain.Data.Readers;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Distill;

public sealed record Problem(int Index, string Id, string Prompt, string SourceFile, long SourceRow, IReadOnlyDictionary<string, object?> Columns);

public sealed class DistillProblems
{
    public IReadOnlyList<Problem> Items { get; }
    /// <summary>Rows in the dataset; rows dropped by decontamination.</summary>
    public int Rows { get; }
    public int Decontaminated { get; }

    public DistillProblems(DistillDataConfig cfg, NgramIndex? evalSets)
    {
        if (!DatasetReader.Exists(cfg.Path))
            throw new RecipeConfigException($"data.path: '{cfg.Path}' not found");
        if (cfg.MaxProblems is < 0) throw new RecipeConfigException($"data.max_problems: must be >= 0, got {cfg.MaxProblems}");
        var items = new List<Problem>();
        foreach (var row in DatasetReader.Read(cfg.Path))
        {
            Rows++;
            if (row[cfg.PromptColumn] is not string prompt)
                throw new DataException(row.File, row.Location, cfg.PromptColumn, $"data.prompt_column '{cfg.PromptColumn}' is missing or not a string");
            if (evalSets is not null && evalSets.Overlaps(prompt)) { Decontaminated++; continue; }
            string id = cfg.IdColumn is null ? $"{Path.GetFileName(row.File)}:{row.Row}"
                : row[cfg.IdColumn] is { } v ? Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)!
                : throw new DataException(row.File, row.Location, cfg.IdColumn, $"data.id_column '{cfg.IdColumn}' is missing");
            if (cfg.MaxProblems is int max && items.Count >= max) continue;   // keep counting rows and contamination
            items.Add(new Problem(items.Count, id, prompt, row.File, row.Row, row.Columns));
        }
        Items = items;
    }
}
