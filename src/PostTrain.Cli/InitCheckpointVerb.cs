// posttrain init-checkpoint --config <config.json> --output <dir>: writes a random-initialised Hugging Face checkpoint
// (config.json + shards + model.safetensors.index.json) of the model a config.json describes, at any size: tensors are
// drawn one at a time (on --device; a GPU is far faster for billions of values) and written as they are drawn, so
// host memory holds one tensor, never the model. Prints the shard layout, the time and the peak host memory.
using System.CommandLine;
using System.Diagnostics;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Core.Runtime;
using PostTrain.Runtime;
using static TorchSharp.torch;

namespace PostTrain.Cli;

public sealed class InitCheckpointVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var config = new Option<string>("--config") { Description = "Hugging Face config.json of the model (deepseek_v3 / deepseek_v2)", Required = true };
        var output = new Option<string>("--output") { Description = "directory to write the checkpoint to", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "stored dtype: bfloat16 or float32", DefaultValueFactory = _ => "bfloat16" };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var std = new Option<double>("--std") { Description = "standard deviation of the weights", DefaultValueFactory = _ => 0.02 };
        var shard = new Option<string>("--max-shard-size") { Description = "largest shard, e.g. 5GB", DefaultValueFactory = _ => "5GB" };
        var device = new Option<string>("--device") { Description = "where values are drawn: cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "cpu" };
        var command = new Command("init-checkpoint", "Write a random-initialised Hugging Face checkpoint of a model config, tensor by tensor")
            { config, output, dtype, seed, std, shard, device };
        command.SetAction(parse =>
        {
            var cfg = ModelConfig.Load(parse.GetValue(config)!);
            var stored = DTypeNames.Parse(parse.GetValue(dtype)!, "--dtype") switch
            {
                DTypeName.Float32 => ScalarType.Float32,
                DTypeName.Bfloat16 => ScalarType.BFloat16,
                var other => throw new UsageException($"--dtype: {DTypeNames.Name(other)} checkpoints are not written; use bfloat16 or float32"),
            };
            long maxShard;
            try { maxShard = ByteSize.Parse(parse.GetValue(shard)!); }
            catch (FormatException e) { throw new UsageException($"--max-shard-size: {e.Message}"); }
            var dev = DeviceSelector.Resolve(parse.GetValue(device), "--device");
            var clock = Stopwatch.StartNew();
            int done = 0;
            var layout = RandomInitCheckpoint.Write(cfg, parse.GetValue(output)!, stored, parse.GetValue(seed), parse.GetValue(std), maxShard, dev,
                name => { if (++done % 500 == 0) io.Out.WriteLine($"  {done} tensors written ({clock.Elapsed.TotalSeconds:F0} s)"); });
            using var self = Process.GetCurrentProcess();
            io.Out.WriteLine($"wrote {parse.GetValue(output)}: {layout.WeightMap.Count} tensors, {layout.TotalSize / 1e9:F2} GB in {layout.Files.Count} file(s), " +
                $"{clock.Elapsed.TotalSeconds:F1} s, peak host memory {self.PeakWorkingSet64 / 1e9:F2} GB");
            return CliApp.Ok;
        });
        return command;
    }
}
