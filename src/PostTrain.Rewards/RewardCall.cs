// The outcome of one reward call on one sample: the reward's result, or a null score with the error or timeout that
// replaced it, and the time the runner waited for it.
namespace PostTrain.Rewards;

public enum RewardCallStatus { Ok, Error, Timeout }

public sealed record RewardCall(RewardResult Result, RewardCallStatus Status, string? Error, double Milliseconds)
{
    public double? Score => Result.Score;
}
