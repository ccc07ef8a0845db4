// RunModel for LoRA training (sft and grpo with `lora:`): adapters attached to the frozen model, and the run trains,
// saves and resumes the adapters only, as PEFT adapter directories naming the base model's directory.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Run;

public static class LoraRun
{
    /// <summary>Attaches the adapters (seeded) and returns them with the run's model; model.path must be a directory.</summary>
    public static (LoraAdapters Adapters, RunModel Run) Attach(DeepSeekForCausalLM model, LoraConfig lora, string modelPath, long seed, string? tokenizerDir)
    {
        if (!Directory.Exists(modelPath))
            throw new RecipeConfigException($"lora: model.path must be a model directory (an adapter names its base model; the built-in '{modelPath}' is random)");
        LoraAdapters adapters;
        try { adapters = LoraAdapters.Attach(model, lora.ToSettings(), seed); }
        catch (ArgumentException e) { throw new RecipeConfigException(e.Message); }
        string baseModel = Path.GetFullPath(modelPath);
        return (adapters, new RunModel(adapters, (dir, extraFiles) => PeftAdapterFiles.Save(dir, adapters, baseModel, extraFiles),
            dir => PeftAdapterFiles.LoadWeights(dir, adapters), tokenizerDir) { Decoder = model });
    }
}
