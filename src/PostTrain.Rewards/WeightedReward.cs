// A reward with its weight in the total (recipes: `{name: format, weight: 0.2}`).
namespace PostTrain.Rewards;

public sealed record WeightedReward(IReward Reward, double Weight = 1.0);
