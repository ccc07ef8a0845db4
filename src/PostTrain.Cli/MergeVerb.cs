// posttrain merge --adapter <peft-dir> --output <dir>: folds a LoRA adapter (adapter_config.json +
// adapter_model.safetensors, as PostTrain's LoRA recipes and PEFT save it) into its base model
// (base_model_name_or_path) and writes a full Hugging Face checkpoint with the tokenizer files (the adapter's, else the
// base's). Bad input exits 2 naming the file.
using System.CommandLine;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;

namespace PostTrain.Cli;

public sealed class MergeVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var adapter = new Option<string>("--adapter") { Description = "LoRA adapter directory (adapter_config.json + adapter_model.safetensors)", Required = true };
        var output = new Option<string>("--output") { Description = "directory to write the merged Hugging Face checkpoint to", Required = true };
        var command = new Command("merge", "Fold a LoRA adapter into its base model and save a full checkpoint") { adapter, output };
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(adapter)!, outDir = parse.GetValue(output)!;
            if (!PeftAdapterFiles.IsAdapterDir(dir)) throw new UsageException($"--adapter: {Path.Combine(dir, PeftAdapterFiles.ConfigFileName)} not found");
            try
            {
                var (model, baseDir) = ModelSetup.LoadFoldedAdapter(dir, io.Out);
                using (model)
                    PretrainedModel.Save(model, outDir, extraFiles: ModelSetup.TokenizerFiles(dir) ?? ModelSetup.TokenizerFiles(baseDir));
            }
            catch (InvalidDataException e) { throw new UsageException(e.Message); }
            io.Out.WriteLine($"merged model: {outDir}");
        });
        return command;
    }
}
