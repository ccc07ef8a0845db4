// posttrain generate --model <dir> (--prompt "..." | --input prompts.jsonl) [sampling options]: batched sampling
// with the generation engine (latent KV cache). Prompts are rendered with the DeepSeek-V3 chat template unless
// --raw; output is one JSON line per completion (prompt index, text, tokens, finish reason, mean log-prob).
using System.CommandLine;
using System.Text.Json;
using PostTrain.Core.Generation;
using PostTrain.Core.Runtime;
using PostTrain.Data.Examples;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Cli;

public sealed class GenerateVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var model = new Option<string>("--model") { Description = "model directory, or a built-in name (random weights)", Required = true };
        var prompt = new Option<string[]>("--prompt") { Description = "a prompt (repeatable)", AllowMultipleArgumentsPerToken = false };
        var input = new Option<string?>("--input") { Description = "JSONL file with a `prompt` field per line" };
        var raw = new Option<bool>("--raw") { Description = "encode prompts as they are (no chat template)" };
        var n = new Option<int>("--n") { Description = "samples per prompt", DefaultValueFactory = _ => 1 };
        var temperature = new Option<double>("--temperature") { DefaultValueFactory = _ => 1.0, Description = "0 = greedy" };
        var topP = new Option<double>("--top-p") { DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => 0 };
        var minP = new Option<double>("--min-p") { DefaultValueFactory = _ => 0.0 };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 256 };
        var stop = new Option<string[]>("--stop") { Description = "stop string (repeatable)" };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "auto" };
        var spec = new Option<bool>("--speculative") { Description = "MTP speculative decoding (greedy only)" };
        var command = new Command("generate", "Sample completions from a model")
            { model, prompt, input, raw, n, temperature, topP, topK, minP, maxNew, stop, seed, device, spec };
        command.SetAction(parse =>
        {
            var texts = new List<string>(parse.GetValue(prompt) ?? []);
            if (parse.GetValue(input) is { } path)
            {
                if (!File.Exists(path)) throw new UsageException($"--input: {path} not found");
                int line = 0;
                foreach (var l in File.ReadLines(path))
                {
                    line++;
                    if (string.IsNullOrWhiteSpace(l)) continue;
                    try { texts.Add(JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()!); }
                    catch (Exception e) { throw new UsageException($"{path}, line {line}: expected a JSON object with a string 'prompt' ({e.Message})"); }
                }
            }
            if (texts.Count == 0) throw new UsageException("give --prompt or --input");
            var loaded = ModelSetup.Load(new ModelConfigSection { Path = parse.GetValue(model)!, Device = parse.GetValue(device)!, Dtype = DTypeName.Float32 }, 0, io.Error);
            var tok = loaded.Tokenizer;
            var template = ChatTemplates.Resolve("auto", tok, parse.GetValue(model));
            var prompts = new List<int[]>();
            foreach (var t in texts)
                for (int i = 0; i < parse.GetValue(n); i++)
                    prompts.Add(parse.GetValue(raw) ? tok.Encode(t) : template.RenderPrompt([new ChatMessage(ChatRole.User, t)]));
            var gen = new TokenGenerator(loaded.Model, new GenerationOptions
            {
                Decoder = new FuncTextDecoder(ids => tok.DecodeGenerated(ids)),
                SpeculativeMtp = parse.GetValue(spec),
            });
            var p = new SamplingParams(parse.GetValue(temperature), parse.GetValue(topP), parse.GetValue(topK), parse.GetValue(minP),
                parse.GetValue(maxNew), [tok.EosId], parse.GetValue(stop) is { Length: > 0 } s ? s : null, parse.GetValue(seed));
            var results = gen.Generate(prompts, p);
            for (int i = 0; i < results.Count; i++)
            {
                var r = results[i];
                io.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    prompt_index = i / parse.GetValue(n), sample = i % parse.GetValue(n), text = tok.DecodeGenerated(r.TokenIds),
                    tokens = r.TokenIds.Length, finish_reason = r.FinishReason,
                    mean_logprob = r.LogProbs.Length > 0 ? r.LogProbs.Average() : 0,
                }));
            }
            var st = gen.LastStats;
            io.Error.WriteLine($"generated {st.GeneratedTokens} tokens in {st.TotalSeconds:F2} s ({st.TokensPerSecond:F0} tokens/s)" +
                (parse.GetValue(spec) ? $", MTP acceptance {st.AcceptanceRate:P1}" : ""));
            return CliApp.Ok;
        });
        return command;
    }
}
