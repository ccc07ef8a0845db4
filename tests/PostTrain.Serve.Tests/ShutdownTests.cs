// Disposing the server while a request is generating ends that request with an error (not a hang) and returns promptly.
using System.Diagnostics;

namespace PostTrain.Serve.Tests;

public sealed class ShutdownTests
{
    [Fact]
    public async Task DisposeDuringAStreamEndsItWithAnErrorEvent()
    {
        var server = await PostTrainServer.StartAsync(new ServeOptions { Model = "tiny-moe", Port = 0, Device = "cpu", Log = TextWriter.Null });
        using var http = new HttpClient();
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseUri, "completions"))
        {
            Content = new StringContent("{\"model\": \"tiny-moe\", \"prompt\": \"abc\", \"max_tokens\": 1000, \"temperature\": 0, \"stream\": true}",
                System.Text.Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: {", await reader.ReadLineAsync());   // generating

        var t0 = Stopwatch.GetTimestamp();
        await server.DisposeAsync();
        // A hang guard only (the error event below shows the request was ended, not finished).
        Assert.True(Stopwatch.GetElapsedTime(t0).TotalSeconds < 60, "dispose took too long");
        var rest = await reader.ReadToEndAsync();
        Assert.Contains("\"type\":\"server_error\"", rest);
        Assert.Contains("shutting down", rest);
        Assert.EndsWith("data: [DONE]\n\n", rest);
    }
}
