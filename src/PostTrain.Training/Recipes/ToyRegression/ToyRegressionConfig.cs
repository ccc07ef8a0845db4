// Config of the toy_regression recipe: the shared sections plus the synthetic problem's size.
namespace PostTrain.Training.Recipes;

public sealed record ToyRegressionConfig : TrainerConfig
{
    public int Features { get; init; } = 8;
    public int DatasetSize { get; init; } = 512;
    public int BatchSize { get; init; } = 32;

    /// <summary>Std of the label noise (fixed in the data set).</summary>
    public double LabelNoise { get; init; } = 0.01;

    /// <summary>Std of fresh Gaussian noise added to each batch's inputs (drawn from torch's generator).</summary>
    public double InputNoise { get; init; } = 0.01;
}
