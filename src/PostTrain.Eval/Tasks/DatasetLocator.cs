// Finds a task's dataset file: an absolute or existing relative path is used as is; otherwise the relative path is
// looked up under the current directory's ancestors and then the application directory's ancestors, so the built-in
// tasks' "datasets/..." paths work from anywhere inside the repository and from test/bin folders.
namespace PostTrain.Eval.Tasks;

public static class DatasetLocator
{
    public static string Locate(string path, string taskName)
    {
        if (File.Exists(path)) return Path.GetFullPath(path);
        if (!Path.IsPathRooted(path))
            foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    var candidate = Path.Combine(dir.FullName, path);
                    if (File.Exists(candidate)) return candidate;
                }
        throw new EvalConfigException($"task '{taskName}': dataset '{path}' not found (looked in the current directory, its parents and the application's parents)");
    }
}
