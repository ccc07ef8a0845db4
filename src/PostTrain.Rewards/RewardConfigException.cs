// The error for a reward that cannot be built: unknown name, bad option, plugin that does not compile.
// The message is meant for the user as it is (it names the reward, the key or the plugin file and line).
namespace PostTrain.Rewards;

public sealed class RewardConfigException(string message, Exception? inner = null) : Exception(message, inner);
