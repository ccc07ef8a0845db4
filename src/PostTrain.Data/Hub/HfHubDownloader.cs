// Downloads a hub model into the local Hugging Face cache, in huggingface_hub's layout, so HfHubCache (and
// transformers) find it:
//   1. GET {endpoint}/api/models/{org}/{name}/revision/{rev} -> the commit sha and the file list (siblings);
//   2. per file, HEAD {endpoint}/{org}/{name}/resolve/{commit}/{file} -> its ETag (X-Linked-Etag for LFS files) and
//      size; the bytes go to blobs/<etag>.incomplete, resumed with a Range request when a previous attempt left
//      part of it, then renamed to blobs/<etag> (atomic) and linked from snapshots/<commit>/<file>;
//   3. refs/<rev> is written last (atomically), so an interrupted download is never taken for a complete one.
// Revision pinning: a branch or tag is resolved to its commit once and every file is fetched at that commit.
// HF_TOKEN (or the token given) is sent as a bearer token; HF_ENDPOINT overrides https://huggingface.co.
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace PostTrain.Data.Hub;

public sealed class HfHubDownloader(HttpClient http, string cacheRoot, string? endpoint = null, string? token = null, TextWriter? progress = null)
{
    private readonly string _endpoint = (endpoint ?? "https://huggingface.co").TrimEnd('/');

    /// <summary>A downloader configured from the environment: HF_ENDPOINT, HF_TOKEN and the first cache folder.</summary>
    public static HfHubDownloader FromEnvironment(HttpClient http, TextWriter? progress = null) =>
        new(http, new HfHubCache().DownloadRoot, Environment.GetEnvironmentVariable("HF_ENDPOINT"), Environment.GetEnvironmentVariable("HF_TOKEN"), progress);

    /// <summary>Downloads <paramref name="id"/> (the files matching <paramref name="include"/>, all when null) and returns
    /// its snapshot folder.</summary>
    public async Task<string> DownloadAsync(HubId id, Func<string, bool>? include = null, CancellationToken ct = default)
    {
        var revision = id.Revision ?? "main";
        var (commit, files) = await RevisionInfoAsync(id, revision, ct);
        var repo = Path.Combine(cacheRoot, id.CacheFolder);
        var snapshot = Path.Combine(repo, "snapshots", commit);
        foreach (var file in files.Where(f => include?.Invoke(f) ?? true))
        {
            var target = Path.Combine(snapshot, file.Replace('/', Path.DirectorySeparatorChar));
            if (File.Exists(target)) continue;
            await FileAsync(id, commit, file, repo, target, ct);
        }
        Directory.CreateDirectory(snapshot);
        if (revision != commit) WriteAtomically(Path.Combine(repo, "refs", revision), commit);
        return snapshot;
    }

    private HttpRequestMessage Request(HttpMethod method, string url)
    {
        var r = new HttpRequestMessage(method, url);
        if (!string.IsNullOrEmpty(token)) r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        r.Headers.UserAgent.ParseAdd("posttrain/1.0");
        return r;
    }

    private static string Escape(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    private void Check(HttpResponseMessage r, string what, HubId id)
    {
        if (r.IsSuccessStatusCode) return;
        var hint = r.StatusCode switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden =>
                string.IsNullOrEmpty(token) ? " (a gated or private model: set HF_TOKEN)" : " (HF_TOKEN was sent but is not allowed to read this model)",
            HttpStatusCode.NotFound => $" (no model {id.RepoId} or no revision '{id.Revision ?? "main"}' on {_endpoint})",
            _ => "",
        };
        throw new HttpRequestException($"{what}: HTTP {(int)r.StatusCode} {r.ReasonPhrase}{hint}", null, r.StatusCode);
    }

    private async Task<(string Commit, List<string> Files)> RevisionInfoAsync(HubId id, string revision, CancellationToken ct)
    {
        var url = $"{_endpoint}/api/models/{Escape(id.RepoId)}/revision/{Uri.EscapeDataString(revision)}";
        using var r = await http.SendAsync(Request(HttpMethod.Get, url), ct);
        Check(r, url, id);
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync(ct));
        var root = doc.RootElement;
        var sha = root.TryGetProperty("sha", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : throw new InvalidDataException($"{url}: no 'sha' in the answer");
        if (!HfHubCache.IsCommit(sha)) throw new InvalidDataException($"{url}: 'sha' is not a 40-hex commit: '{sha}'");
        var files = root.TryGetProperty("siblings", out var sib) && sib.ValueKind == JsonValueKind.Array
            ? sib.EnumerateArray().Select(x => x.GetProperty("rfilename").GetString()!).ToList()
            : throw new InvalidDataException($"{url}: no 'siblings' file list in the answer");
        foreach (var f in files)
            if (f.StartsWith('/') || f.Split('/').Any(p => p is ".." or "." or ""))
                throw new InvalidDataException($"{url}: refusing the file name '{f}'");
        return (sha, files);
    }

    private async Task FileAsync(HubId id, string commit, string file, string repo, string target, CancellationToken ct)
    {
        var url = $"{_endpoint}/{Escape(id.RepoId)}/resolve/{commit}/{Escape(file)}";
        string etag;
        long? size;
        using (var head = await http.SendAsync(Request(HttpMethod.Head, url), ct))
        {
            Check(head, url, id);
            etag = Header(head, "X-Linked-Etag") ?? head.Headers.ETag?.Tag ?? throw new InvalidDataException($"{url}: no ETag");
            etag = etag.Replace("W/", "").Trim('"');
            size = long.TryParse(Header(head, "X-Linked-Size"), out var ls) ? ls : head.Content.Headers.ContentLength;
        }
        if (etag.Length == 0 || etag.Contains('/') || etag.Contains("..")) throw new InvalidDataException($"{url}: bad ETag '{etag}'");
        var blob = Path.Combine(repo, "blobs", etag);
        if (!File.Exists(blob)) await BlobAsync(id, url, file, blob, size, ct);
        Link(blob, target);
    }

    private static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : r.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;

    private async Task BlobAsync(HubId id, string url, string file, string blob, long? size, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        var partial = blob + ".incomplete";
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        var request = Request(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        using var r = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (have > 0 && r.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && size == have) { File.Move(partial, blob, overwrite: true); return; }
        Check(r, url, id);
        bool resumed = r.StatusCode == HttpStatusCode.PartialContent;
        if (!resumed) have = 0;
        long total = size ?? (r.Content.Headers.ContentLength is long n ? n + have : -1);
        await using (var output = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write))
        await using (var input = await r.Content.ReadAsStreamAsync(ct))
        {
            var buffer = new byte[1 << 16];
            long done = have, shown = -1;
            int read;
            while ((read = await input.ReadAsync(buffer, ct)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), ct);
                done += read;
                long pct = total > 0 ? done * 100 / total : -1;
                if (pct != shown && (pct % 5 == 0 || done == total)) { Progress(file, done, total, resumed); shown = pct; }
            }
        }
        long got = new FileInfo(partial).Length;
        if (total >= 0 && got != total) throw new IOException($"{url}: got {got} of {total} bytes; run again to resume");
        File.Move(partial, blob, overwrite: true);
    }

    private void Progress(string file, long done, long total, bool resumed)
    {
        if (progress is null) return;
        var bar = total > 0 ? new string('#', (int)(done * 30 / total)).PadRight(30, '.') : "";
        progress.WriteLine(total > 0
            ? $"{file} [{bar}] {done * 100 / total,3}% {done}/{total} bytes{(resumed ? " (resumed)" : "")}"
            : $"{file} {done} bytes");
    }

    /// <summary>snapshots/&lt;commit&gt;/&lt;file&gt; -> ../../blobs/&lt;etag&gt; (a relative symbolic link, a copy where links fail).</summary>
    private static void Link(string blob, string target)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var tmp = target + ".tmp-" + Guid.NewGuid().ToString("N");
        try { File.CreateSymbolicLink(tmp, Path.GetRelativePath(Path.GetDirectoryName(target)!, blob)); }
        catch (IOException) { File.Copy(blob, tmp); }
        catch (UnauthorizedAccessException) { File.Copy(blob, tmp); }
        File.Move(tmp, target, overwrite: true);
    }

    private static void WriteAtomically(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}
