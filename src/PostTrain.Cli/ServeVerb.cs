// posttrain serve --model <dir|built-in> [--port 8000] [--host 127.0.0.1] ...: an OpenAI-compatible HTTP server
// (PostTrain.Serve) until Ctrl-C.
using System.CommandLine;
using PostTrain.Serve;

namespace PostTrain.Cli;

public sealed class ServeVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var model = new Option<string>("--model") { Description = "model directory, or a built-in name (random weights)", Required = true };
        var host = new Option<string>("--host") { Description = "address to listen on (loopback by default: no authentication)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "port (0 = any free one)", DefaultValueFactory = _ => 8000 };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda | cuda:N", DefaultValueFactory = _ => "auto" };
        var dtype = new Option<string>("--dtype") { Description = "float32 | bfloat16 | fp8 | auto (bfloat16 on CUDA, float32 elsewhere)", DefaultValueFactory = _ => "float32" };
        var name = new Option<string?>("--served-model-name") { Description = "model id clients use (default: the directory's or built-in name)" };
        var maxBatch = new Option<int>("--max-batch-size") { Description = "most sequences per engine call", DefaultValueFactory = _ => 64 };
        var window = new Option<double>("--batch-window-ms") { Description = "how long to gather requests into one batch", DefaultValueFactory = _ => 10 };
        var template = new Option<string>("--chat-template") { Description = "auto (the model's own template, else deepseek_v3) | model | deepseek_v3 | plain | file.jinja", DefaultValueFactory = _ => "auto" };
        var maxLen = new Option<int?>("--max-model-len") { Description = "prompt + completion tokens at most (default: max_position_embeddings)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer directory (default: the model's)" };
        var seed = new Option<long>("--seed") { Description = "init seed of a built-in model", DefaultValueFactory = _ => 0 };
        var metricsDir = new Option<string?>("--metrics-dir") { Description = "write per-batch metrics (metrics.jsonl, TensorBoard) here" };
        var command = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models)")
            { model, host, port, device, dtype, name, maxBatch, window, template, maxLen, tokenizer, seed, metricsDir };
        command.SetAction(async (parse, ct) =>
        {
            ServeOptions options = new()
            {
                Model = parse.GetValue(model)!, Host = parse.GetValue(host)!, Port = parse.GetValue(port), Device = parse.GetValue(device)!,
                Dtype = DTypeNames.Parse(parse.GetValue(dtype)!, "--dtype"), ServedModelName = parse.GetValue(name), MaxBatchSize = parse.GetValue(maxBatch),
                BatchWindowMs = parse.GetValue(window), ChatTemplate = parse.GetValue(template)!, MaxModelLen = parse.GetValue(maxLen),
                Tokenizer = parse.GetValue(tokenizer), Seed = parse.GetValue(seed), MetricsDir = parse.GetValue(metricsDir), Log = io.Error,
            };
            PostTrainServer server;
            try { server = await PostTrainServer.StartAsync(options, ct); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
            catch (IOException e) { throw new UsageException($"cannot listen on {options.Host}:{options.Port}: {e.Message}"); }
            await using (server)
            {
                io.Out.WriteLine($"PostTrain server: {server.BaseUri} (model '{server.ModelName}'); Ctrl-C to stop");
                io.Out.WriteLine($"  curl {server.BaseUri}chat/completions -H 'Content-Type: application/json' " +
                    $"-d '{{\"model\": \"{server.ModelName}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hi\"}}]}}'");
                await server.WaitForShutdownAsync(ct);
                var s = server.Stats;
                io.Out.WriteLine($"stopped: {s.Requests} requests, {s.Batches} batches, {s.GeneratedTokens} tokens generated");
            }
            return CliApp.Ok;
        });
        return command;
    }
}
