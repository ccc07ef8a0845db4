// One reward as a recipe lists it: `{name: format, weight: 0.2, options: {think_open: "<think>"}}`.
// Name is a built-in name, a plugin name (file name in rewards/ without extension) or a path to a .js/.csx file.
namespace PostTrain.Rewards;

public sealed record RewardSpec(string Name, double Weight = 1.0, IReadOnlyDictionary<string, object?>? Options = null);
