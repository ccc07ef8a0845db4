// Supervised fine-tuning config: the shared sections plus the model and data to train on. The SFT trainer
// adds its own fields here (loss masking, packing details, ...).
namespace PostTrain.Training.Recipes;

public sealed record SftConfig : RecipeConfig
{
    public required ModelConfigSection Model { get; init; }
    public required DataConfig Data { get; init; }
}
