// Which completion tokens count in the loss: a completion's own tokens (not the padding after it), minus whole
// completions cut off at max_completion_length when mask_truncated_completions is on (DAPO: a truncated answer is
// neither right nor wrong, so it should not be punished for its reward).
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public static class CompletionMask
{
    /// <summary>lengths[i] tokens of completion i, truncated[i] = it hit the length limit -> (n, maxLength) float32 mask.</summary>
    public static Tensor Build(IReadOnlyList<int> lengths, IReadOnlyList<bool> truncated, int maxLength, bool maskTruncated, Device? device = null)
    {
        if (lengths.Count != truncated.Count) throw new ArgumentException($"{lengths.Count} lengths for {truncated.Count} truncation flags");
        var m = new float[lengths.Count * maxLength];
        for (int i = 0; i < lengths.Count; i++)
        {
            if (lengths[i] > maxLength) throw new ArgumentException($"completion {i} has {lengths[i]} tokens, more than {maxLength}");
            if (maskTruncated && truncated[i]) continue;
            for (int t = 0; t < lengths[i]; t++) m[i * maxLength + t] = 1;
        }
        return tensor(m, [lengths.Count, maxLength], device: device);
    }
}
