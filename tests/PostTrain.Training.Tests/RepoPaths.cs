// Paths inside the repository checkout the tests run from (found by walking up to PostTrain.sln).
namespace PostTrain.Training.Tests;

internal static class RepoPaths
{
    public static string Of(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "PostTrain.sln"))) return Path.Combine(d.FullName, relative);
        throw new DirectoryNotFoundException("repo root (PostTrain.sln) not found above " + AppContext.BaseDirectory);
    }
}
