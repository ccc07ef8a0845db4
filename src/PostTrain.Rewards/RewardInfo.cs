// A reward as `reward ls` shows it: Kind is "builtin", "js" or "csx"; Path is the plugin file (null for built-ins).
namespace PostTrain.Rewards;

public sealed record RewardInfo(string Name, string Kind, string Description, string? Path = null);
