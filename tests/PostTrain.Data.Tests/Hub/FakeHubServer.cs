// A tiny HTTP/1.1 server on a free loopback port that serves the hub endpoints the downloader uses
// (/api/models/{repo}/revision/{rev}, HEAD/GET /{repo}/resolve/{commit}/{file} with Range), can require a
// bearer token, and can cut a download off after N bytes to test resuming. Every request is recorded.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace PostTrain.Data.Tests.Hub;

internal sealed class FakeHubServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public FakeHubServer(string repo, Dictionary<string, string> revisions, Dictionary<string, byte[]> files)
    {
        Repo = repo;
        Revisions = revisions;
        Files = files;
        _listener.Start();
        _loop = Task.Run(AcceptLoop);
    }

    public string Repo { get; }
    public Dictionary<string, string> Revisions { get; }
    public Dictionary<string, byte[]> Files { get; }
    public string Endpoint => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
    public string? RequiredToken { get; set; }
    public int? CutAfterBytes { get; set; }
    public ConcurrentQueue<(string Method, string Path, string? Range, string? Auth)> Log { get; } = new();

    public static string Etag(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one) == 0) return;
            head.Append((char)one[0]);
        }
        var lines = head.ToString().Split("\r\n");
        var parts = lines[0].Split(' ');
        string method = parts[0], path = Uri.UnescapeDataString(parts[1]);
        var headers = lines.Skip(1).Where(l => l.Contains(':')).ToDictionary(l => l[..l.IndexOf(':')].Trim().ToLowerInvariant(), l => l[(l.IndexOf(':') + 1)..].Trim());
        headers.TryGetValue("range", out var range);
        headers.TryGetValue("authorization", out var auth);
        Log.Enqueue((method, path, range, auth));

        if (RequiredToken is not null && auth != "Bearer " + RequiredToken) { await Respond(stream, 401, "Unauthorized", [], []); return; }
        var api = $"/api/models/{Repo}/revision/";
        if (path.StartsWith(api, StringComparison.Ordinal) && Revisions.TryGetValue(path[api.Length..], out var sha))
        {
            var body = JsonSerializer.SerializeToUtf8Bytes(new { id = Repo, sha, siblings = Files.Keys.Select(f => new { rfilename = f }) });
            await Respond(stream, 200, "OK", ["Content-Type: application/json"], body);
            return;
        }
        var resolve = $"/{Repo}/resolve/";
        if (path.StartsWith(resolve, StringComparison.Ordinal))
        {
            var rest = path[resolve.Length..];
            var commit = rest[..rest.IndexOf('/')];
            if (Revisions.ContainsValue(commit) && Files.TryGetValue(rest[(commit.Length + 1)..], out var data))
            {
                var etag = $"ETag: \"{Etag(data)}\"";
                if (method == "HEAD") { await Respond(stream, 200, "OK", [etag], [], contentLength: data.Length); return; }
                long from = range is not null ? long.Parse(range["bytes=".Length..].TrimEnd('-')) : 0;
                var slice = data[(int)from..];
                if (range is null && CutAfterBytes is int cut && slice.Length > cut)
                {
                    await Respond(stream, 200, "OK", [etag], slice[..cut], contentLength: slice.Length);   // promises more than it sends
                    return;
                }
                await Respond(stream, range is null ? 200 : 206, range is null ? "OK" : "Partial Content",
                    range is null ? [etag] : [etag, $"Content-Range: bytes {from}-{data.Length - 1}/{data.Length}"], slice);
                return;
            }
        }
        await Respond(stream, 404, "Not Found", [], []);
    }

    private static async Task Respond(NetworkStream s, int code, string reason, string[] headers, byte[] body, long? contentLength = null)
    {
        var head = $"HTTP/1.1 {code} {reason}\r\nConnection: close\r\nContent-Length: {contentLength ?? body.Length}\r\n" +
                   string.Concat(headers.Select(h => h + "\r\n")) + "\r\n";
        await s.WriteAsync(Encoding.ASCII.GetBytes(head));
        await s.WriteAsync(body);
        await s.FlushAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try { await _loop; } catch (Exception) { }
        _stop.Dispose();
    }
}
