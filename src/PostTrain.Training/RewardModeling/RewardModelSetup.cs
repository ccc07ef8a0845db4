// Builds the reward model a recipe or reward asks for: a saved reward model directory (config.json architectures
// *ForSequenceClassification), a causal-LM directory (its backbone, a new seeded score head), or a built-in name
// (random backbone and head from the seed, byte tokenizer). The tokenizer comes from model.tokenizer, else the
// directory's tokenizer.json, else the byte tokenizer.
using PostTrain.Core.Model;
using PostTrain.Core.Runtime;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.RewardModeling;

public sealed record LoadedRewardModel(RewardModel Model, ITokenizer Tokenizer, Device Device, string? TokenizerDir);

public static class RewardModelSetup
{
    public static LoadedRewardModel Load(ModelConfigSection m, long seed, double headInitStd, TextWriter log)
    {
        var device = DeviceSelector.Resolve(m.Device, "model.device");
        RewardModel model;
        string? tokDir = m.Tokenizer;
        if (BuiltinModels.ByName.TryGetValue(m.Path, out var make) && !Directory.Exists(m.Path))
        {
            model = RewardModelFiles.Random(make(), seed);
            log.WriteLine($"reward model: built-in '{m.Path}' backbone ({model.ParameterCount() / 1e6:F2} M parameters), random init (seed {seed})");
        }
        else
        {
            if (!Directory.Exists(m.Path))
                throw new RecipeConfigException($"model.path: '{m.Path}' is neither a directory nor a built-in model ({string.Join(", ", BuiltinModels.ByName.Keys)})");
            if (RewardModelFiles.IsRewardModelDir(m.Path))
            {
                model = RewardModelFiles.Load(m.Path);
                log.WriteLine($"reward model: {m.Path} ({model.ParameterCount() / 1e6:F2} M parameters)");
            }
            else
            {
                model = RewardModelFiles.FromCausalLm(m.Path, seed, headInitStd);
                log.WriteLine($"reward model: backbone from {m.Path} ({model.ParameterCount() / 1e6:F2} M parameters), new score head (std {headInitStd}, seed {seed})");
            }
            tokDir ??= m.Path;
        }
        var tokenizer = ModelSetup.LoadTokenizer(tokDir);
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new RecipeConfigException($"model.tokenizer: vocabulary {tokenizer.VocabSize} exceeds the model's vocab_size {model.Config.VocabSize}");
        model.SetPrecision(ModelSetup.PrecisionOn(m.Dtype, device, log), ModelSetup.Fp8MinDimOf(m, device));
        if (device.type != TorchSharp.DeviceType.CPU) model.to(device);
        return new LoadedRewardModel(model, tokenizer, device, tokDir);
    }
}
