// Shared test helpers: the repository's paths, a temporary folder, and samples.
namespace PostTrain.Rewards.Tests;

internal static class Repo
{
    public static string Root { get; } = FindRoot();
    public static string RewardsDir => Path.Combine(Root, "rewards");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PostTrain.sln"))) return dir.FullName;
        throw new InvalidOperationException("PostTrain.sln not found above " + AppContext.BaseDirectory);
    }
}

internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("posttrain-rewards-").FullName;

    public string Write(string name, string content)
    {
        var file = System.IO.Path.Combine(Path, name);
        File.WriteAllText(file, content);
        return file;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

internal static class Sample
{
    public static RewardInput Of(string completion, string prompt = "Q", params (string Key, object? Value)[] columns) =>
        new(prompt, completion, columns.ToDictionary(c => c.Key, c => c.Value));

    public static double? Score(IReward reward, RewardInput input) => reward.Score(input, CancellationToken.None).Score;

    public static double? Score(IReward reward, string completion, string prompt = "Q") => Score(reward, Of(completion, prompt));
}
