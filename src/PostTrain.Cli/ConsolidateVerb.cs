// posttrain consolidate <checkpoint-dir> <out-dir> [--max-shard-size 5GB]: writes a training checkpoint's model as a
// Hugging Face directory, as one process saves it (model.safetensors or shards + index, config.json, tokenizer files).
// Works on distributed checkpoints (any number of ranks: sharded parameters are assembled from the rank files) and on
// single-process ones. An uncommitted step (no manifest: a save killed midway) is refused. Bad input exits 2.
using System.CommandLine;
using PostTrain.Core.Checkpoints;
using PostTrain.Training.Run;

namespace PostTrain.Cli;

public sealed class ConsolidateVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "a checkpoint step directory, e.g. runs/sft/step-000100" };
        var output = new Argument<string>("output") { Description = "directory to write the Hugging Face model to" };
        var maxShard = new Option<string>("--max-shard-size") { Description = "largest safetensors shard, e.g. 5GB or 500MB", DefaultValueFactory = _ => "5GB" };
        var command = new Command("consolidate", "Write a (distributed) training checkpoint's model as one Hugging Face directory") { checkpoint, output, maxShard };
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(checkpoint)!, outDir = parse.GetValue(output)!;
            long maxBytes;
            try { maxBytes = ByteSize.Parse(parse.GetValue(maxShard)!); }
            catch (FormatException e) { throw new UsageException($"--max-shard-size: {e.Message}"); }
            int count;
            try { count = CheckpointExport.Consolidate(dir, outDir, maxBytes); }
            catch (InvalidDataException e) { throw new UsageException(e.Message); }
            io.Out.WriteLine($"consolidated model ({count} tensors): {outDir}");
        });
        return command;
    }
}
