// Finds a hub model in the local Hugging Face cache, laid out as huggingface_hub writes it:
//   <cache>/models--org--name/refs/<revision>       the commit hash a branch or tag points at
//   <cache>/models--org--name/snapshots/<commit>/    the files of that commit (links into blobs/)
// Cache folders, in order: $HF_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub,
// ~/.cache/huggingface/hub. The revision defaults to main; a 40-hex commit hash is looked up in snapshots/ directly.
using System.Text.RegularExpressions;

namespace PostTrain.Data.Hub;

public sealed class HfHubCache(Func<string, string?>? env = null)
{
    private readonly Func<string, string?> _env = env ?? Environment.GetEnvironmentVariable;

    /// <summary>The cache folders searched, in order, without duplicates.</summary>
    public IReadOnlyList<string> Roots()
    {
        var roots = new List<string>();
        void Add(string? p) { if (!string.IsNullOrEmpty(p) && !roots.Contains(Path.GetFullPath(p))) roots.Add(Path.GetFullPath(p)); }
        Add(_env("HF_HUB_CACHE"));
        if (_env("HF_HOME") is { Length: > 0 } home) Add(Path.Combine(home, "hub"));
        if (_env("XDG_CACHE_HOME") is { Length: > 0 } xdg) Add(Path.Combine(xdg, "huggingface", "hub"));
        var user = _env("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(user)) Add(Path.Combine(user, ".cache", "huggingface", "hub"));
        return roots;
    }

    /// <summary>Where downloads go: the first cache folder.</summary>
    public string DownloadRoot => Roots().FirstOrDefault() ?? throw new InvalidOperationException("no Hugging Face cache folder (set HF_HUB_CACHE or HF_HOME)");

    /// <summary>The snapshot folder of <paramref name="id"/>, or null; <paramref name="looked"/> lists where it looked.</summary>
    public string? Find(HubId id, List<string> looked)
    {
        var revision = id.Revision ?? "main";
        foreach (var root in Roots())
        {
            var repo = Path.Combine(root, id.CacheFolder);
            var refFile = Path.Combine(repo, "refs", revision);
            if (File.Exists(refFile))
            {
                var commit = File.ReadAllText(refFile).Trim();
                var snap = Path.Combine(repo, "snapshots", commit);
                looked.Add($"{refFile} -> {snap}");
                if (Directory.Exists(snap)) return snap;
                continue;
            }
            var direct = Path.Combine(repo, "snapshots", revision);
            looked.Add(IsCommit(revision) ? direct : $"{refFile} (missing)");
            if (IsCommit(revision) && Directory.Exists(direct)) return direct;
        }
        return null;
    }

    /// <summary>A local directory for <paramref name="pathOrId"/>: the path itself when it is a directory (or not a hub
    /// id), else the cached snapshot of the hub id. A hub id missing from the cache is a DirectoryNotFoundException
    /// listing every place looked at.</summary>
    public string Resolve(string pathOrId)
    {
        if (Directory.Exists(pathOrId) || !HubId.TryParse(pathOrId, out var id)) return pathOrId;
        var looked = new List<string>();
        return Find(id, looked) ?? throw new DirectoryNotFoundException(
            $"'{pathOrId}' is neither a directory nor a hub model in the local Hugging Face cache; looked at:\n  " + string.Join("\n  ", looked) +
            "\n(download it with `huggingface-cli download " + id.RepoId + "` or posttrain's hub download, or set HF_HUB_CACHE / HF_HOME)");
    }

    /// <summary>Resolve with the process environment.</summary>
    public static string ResolvePath(string pathOrId) => new HfHubCache().Resolve(pathOrId);

    public static bool IsCommit(string revision) => CommitPattern.IsMatch(revision);

    private static readonly Regex CommitPattern = new("^[0-9a-f]{40}$", RegexOptions.Compiled);
}
