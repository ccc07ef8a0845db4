// The one place that builds a reward registry with the torch-backed rewards: PostTrain.Rewards has no torch
// dependency, so rewards that run a model (`model`: a trained reward model) are registered here, above it. GRPO,
// eval and the CLI's `reward` verbs build their registry through this.
using PostTrain.Rewards;

namespace PostTrain.Training.RewardModeling;

public static class TrainingRewardRegistry
{
    public static RewardRegistry Create(string? rewardsDir)
    {
        var registry = new RewardRegistry(rewardsDir);
        registry.Register("model", ModelReward.Description, ModelReward.FromOptions);
        return registry;
    }
}
