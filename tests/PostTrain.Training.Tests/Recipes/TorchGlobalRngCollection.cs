// Tests that run recipes or touch torch's global generator (manual_seed, rand) must not run in parallel with
// each other: a concurrent test drawing from the same generator would change their numbers.
namespace PostTrain.Training.Tests.Recipes;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchGlobalRngCollection
{
    public const string Name = "torch global RNG";
}
