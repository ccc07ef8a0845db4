// Finds the shipped recipe YAML files: next to the executable (the build copies recipes/*.yaml to
// <output>/recipes/) or in a recipes/ folder of the current directory or one of its parents (a repo checkout).
namespace PostTrain.Training.Recipes;

public static class RecipeFiles
{
    public const string Folder = "recipes";

    public static string Locate(string yamlFile)
    {
        var candidates = new List<string> { Path.Combine(AppContext.BaseDirectory, Folder, yamlFile) };
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
            candidates.Add(Path.Combine(dir.FullName, Folder, yamlFile));
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"recipe file {yamlFile} not found; looked in:\n  " + string.Join("\n  ", candidates.Take(4)));
    }

    /// <summary>The command in the file's header comment ("# posttrain run recipes/x.yaml" -> "posttrain run recipes/x.yaml").</summary>
    public static string? HeaderCommand(string yamlText)
    {
        var first = yamlText.Split('\n', 2)[0].Trim();
        return first.StartsWith("# posttrain ", StringComparison.Ordinal) ? first[2..] : null;
    }
}
