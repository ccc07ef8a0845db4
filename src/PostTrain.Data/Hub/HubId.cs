// A Hugging Face hub model id as users write it: org/name or org/name@revision (a branch, tag or commit hash).
// Both parts are [A-Za-z0-9][A-Za-z0-9._-]*; anything else (an absolute or ./relative path, more than one
// slash) is not a hub id.
using System.Text.RegularExpressions;

namespace PostTrain.Data.Hub;

public sealed partial record HubId(string Org, string Name, string? Revision)
{
    public string RepoId => $"{Org}/{Name}";

    /// <summary>The cache folder name: models--org--name.</summary>
    public string CacheFolder => $"models--{Org}--{Name}";

    public override string ToString() => Revision is null ? RepoId : $"{RepoId}@{Revision}";

    public static bool TryParse(string text, out HubId id)
    {
        var m = Pattern().Match(text);
        id = m.Success ? new HubId(m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Success ? m.Groups[3].Value : null) : null!;
        return m.Success;
    }

    [GeneratedRegex(@"^([A-Za-z0-9][A-Za-z0-9._-]*)/([A-Za-z0-9][A-Za-z0-9._-]*)(?:@([A-Za-z0-9][A-Za-z0-9._/-]*))?$")]
    private static partial Regex Pattern();
}
