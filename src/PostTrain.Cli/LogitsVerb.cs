// posttrain logits --model <hf-dir> --input <ids.safetensors> --output <logits.safetensors>: runs the model on int64
// `input_ids` [B, T] and writes float32 `logits` [B, T, V]: the same check as the parity tests, on any checkpoint.
using System.CommandLine;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Core.Runtime;
using static TorchSharp.torch;

namespace PostTrain.Cli;

public sealed class LogitsVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var model = new Option<string>("--model") { Description = "Hugging Face-style model directory (config.json + safetensors)", Required = true };
        var input = new Option<string>("--input") { Description = "safetensors file with int64 input_ids [B, T]", Required = true };
        var output = new Option<string>("--output") { Description = "safetensors file to write float32 logits [B, T, V] to", Required = true };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var command = new Command("logits", "Write a model's logits for given token ids (to compare with another implementation)") { model, input, output, device };
        command.SetAction(parse =>
        {
            string inPath = parse.GetValue(input)!, outPath = parse.GetValue(output)!, dir = parse.GetValue(model)!;
            if (!File.Exists(inPath)) throw new UsageException($"--input: {inPath} not found");
            var dev = DeviceSelector.Resolve(parse.GetValue(device), "--device");
            var tensors = SafeTensors.Load(inPath);
            if (!tensors.TryGetValue("input_ids", out var ids))
                throw new UsageException($"{inPath}: no tensor 'input_ids' (found: {string.Join(", ", tensors.Keys.Take(5))}{(tensors.Count > 5 ? ", ..." : "")})");
            if (ids.dim() != 2 || ids.dtype != ScalarType.Int64)
                throw new UsageException($"{inPath}: tensor 'input_ids' must be int64 [B, T], got {ids.dtype} [{string.Join(", ", ids.shape)}]");
            var (m, _) = PretrainedModel.Load(dir, dev);
            long max = ids.max().item<long>(), min = ids.min().item<long>();
            if (min < 0 || max >= m.Config.VocabSize)
                throw new UsageException($"{inPath}: tensor 'input_ids' has ids in [{min}, {max}], outside the model's vocabulary 0..{m.Config.VocabSize - 1}");
            m.eval();
            using (no_grad())
            {
                var logits = m.Forward(ids.to(dev)).Logits.to(ScalarType.Float32).cpu();
                SafeTensors.Save(outPath, new Dictionary<string, Tensor> { ["logits"] = logits });
                io.Out.WriteLine($"wrote logits [{string.Join(", ", logits.shape)}] to {outPath}");
            }
            return CliApp.Ok;
        });
        return command;
    }
}
