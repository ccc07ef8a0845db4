// A plugin failed while scoring a sample. The message starts with "file:line:" (line when known) so the user can
// jump to the fault; RewardRunner turns it into a null score and a counted error carrying this message.
namespace PostTrain.Rewards.Plugins;

public sealed class PluginException(string file, int? line, string message, Exception? inner = null)
    : Exception(Where(file, line) + message, inner)
{
    public string File { get; } = file;
    public int? Line { get; } = line;

    public static string Where(string file, int? line, int? column = null) =>
        line is null ? $"{file}: " : column is null ? $"{file}:{line}: " : $"{file}:{line}:{column}: ";
}
