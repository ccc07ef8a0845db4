// Pulls the program out of a model completion: the last closed fenced block (``` or ~~~, three or more) whose
// info string names the language, else the last closed block with no info string. Text before a closing
// </think> is ignored (reasoning models draft code there). An unclosed fence (a truncated completion) does not
// count. Returns null when nothing fits.
namespace PostTrain.Rewards.Sandbox;

public static class CodeExtractor
{
    public static string? Extract(string completion, string language)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var aliases = Aliases(language);
        var think = completion.LastIndexOf("</think>", StringComparison.Ordinal);
        var text = think >= 0 ? completion[(think + "</think>".Length)..] : completion;
        var lines = text.Replace("\r\n", "\n").Split('\n');

        string? tagged = null, untagged = null;
        for (var i = 0; i < lines.Length; i++)
        {
            if (!IsFence(lines[i], out var fenceChar, out var fenceLength, out var info)) continue;
            var close = -1;
            for (var j = i + 1; j < lines.Length; j++)
                if (IsFence(lines[j], out var c, out var n, out var rest) && c == fenceChar && n >= fenceLength && rest.Length == 0)
                {
                    close = j;
                    break;
                }
            if (close < 0) break;
            var body = string.Join('\n', lines[(i + 1)..close]);
            var tag = info.Split(' ', 2)[0].Trim().ToLowerInvariant();
            if (aliases.Contains(tag)) tagged = body;
            else if (tag.Length == 0) untagged = body;
            i = close;
        }
        return tagged ?? untagged;
    }

    /// <summary>The canonical language name ("javascript" or "csharp") for an alias, or null.</summary>
    public static string? Canonical(string language) => language.Trim().ToLowerInvariant() switch
    {
        "javascript" or "js" or "node" or "nodejs" or "mjs" => "javascript",
        "csharp" or "cs" or "c#" or "c-sharp" => "csharp",
        _ => null,
    };

    private static HashSet<string> Aliases(string language) => Canonical(language) switch
    {
        "javascript" => ["javascript", "js", "node", "nodejs", "mjs"],
        "csharp" => ["csharp", "cs", "c#", "c-sharp"],
        _ => throw new ArgumentException($"unknown language '{language}' (javascript or csharp)", nameof(language)),
    };

    private static bool IsFence(string line, out char fenceChar, out int length, out string info)
    {
        var trimmed = line.TrimStart(' ');
        fenceChar = trimmed.Length > 0 ? trimmed[0] : '\0';
        length = 0;
        info = "";
        if (line.Length - trimmed.Length > 3 || fenceChar is not ('`' or '~')) return false;
        while (length < trimmed.Length && trimmed[length] == fenceChar) length++;
        if (length < 3) return false;
        info = trimmed[length..].Trim();
        return !(fenceChar == '`' && info.Contains('`'));
    }
}
