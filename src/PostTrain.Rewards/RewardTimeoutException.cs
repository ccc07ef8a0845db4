// Thrown by a reward that hit its own time limit (e.g. a JavaScript plugin stopped by Jint's TimeoutInterval);
// RewardRunner counts it as a timeout rather than an error.
namespace PostTrain.Rewards;

public sealed class RewardTimeoutException(string message, Exception? inner = null) : TimeoutException(message, inner);
