// What the registry knows about a plugin file before loading it: its reward name (the file name without extension),
// kind (js or csx) and one-line description (the file's first line when it is a // comment).
namespace PostTrain.Rewards.Plugins;

public sealed record PluginFile(string Name, string Path, string Kind, string Description)
{
    public static readonly string[] Extensions = [".js", ".csx"];

    public static bool IsPlugin(string path) => Extensions.Contains(System.IO.Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    public static PluginFile Read(string path)
    {
        var kind = System.IO.Path.GetExtension(path).TrimStart('.').ToLowerInvariant();
        var first = File.ReadLines(path).Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "";
        var description = first.StartsWith("//", StringComparison.Ordinal) ? first.TrimStart('/').Trim() : "(no description: start the file with a // comment)";
        return new PluginFile(System.IO.Path.GetFileNameWithoutExtension(path), path, kind, description);
    }

    /// <summary>Loads the plugin as a reward (compiles it, runs its top level once, checks the contract).</summary>
    public IReward Load(IReadOnlyDictionary<string, object?>? options = null) => Kind switch
    {
        "js" => JsPluginReward.Load(Path, options),
        "csx" => CSharpScriptReward.Load(Path, options),
        _ => throw new RewardConfigException($"{Path}: unknown plugin kind '{Kind}' (expected .js or .csx)"),
    };
}
