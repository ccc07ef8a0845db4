// posttrain hub download <org/name[@revision]> [--include <glob> ...]: downloads a model from the Hugging Face hub
// into the local cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) in huggingface_hub's layout,
// resuming interrupted files, with HF_TOKEN for gated models and HF_ENDPOINT for mirrors; prints the snapshot folder.
// After that, model.path / --model accept the hub id directly.
using System.CommandLine;
using System.IO.Enumeration;
using PostTrain.Data.Hub;

namespace PostTrain.Cli;

public sealed class HubVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var id = new Argument<string>("model") { Description = "a hub id org/name or org/name@revision (branch, tag or commit)" };
        var include = new Option<string[]>("--include") { Description = "only files matching this glob (repeatable), e.g. '*.json'" };
        var download = new Command("download", "Download a model from the Hugging Face hub into the local cache") { id, include };
        download.SetAction(async (parse, ct) =>
        {
            var text = parse.GetValue(id)!;
            if (!HubId.TryParse(text, out var hubId)) throw new UsageException($"'{text}' is not a hub id (org/name or org/name@revision)");
            var globs = parse.GetValue(include) ?? [];
            Func<string, bool>? filter = globs.Length == 0 ? null : f => globs.Any(g => FileSystemName.MatchesSimpleExpression(g, f, ignoreCase: false));
            using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
            try
            {
                var snapshot = await HfHubDownloader.FromEnvironment(http, io.Error).DownloadAsync(hubId, filter, ct);
                io.Out.WriteLine(snapshot);
                return CliApp.Ok;
            }
            catch (HttpRequestException e) { throw new UsageException($"hub download {hubId}: {e.Message}"); }
        });
        return new Command("hub", "Hugging Face hub models in the local cache") { download };
    }
}
