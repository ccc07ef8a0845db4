// A rendered example: token ids and, per token, whether the loss trains on predicting it (assistant
// content and its end-of-sentence token for chat; the completion for prompt/completion; all for text).
namespace PostTrain.Data.Templates;

public sealed record TokenizedExample
{
    public TokenizedExample(int[] inputIds, bool[] trainMask)
    {
        if (inputIds.Length != trainMask.Length)
            throw new ArgumentException($"{inputIds.Length} ids but {trainMask.Length} mask entries");
        InputIds = inputIds;
        TrainMask = trainMask;
    }

    public int[] InputIds { get; }

    /// <summary>TrainMask[t]: token t is a training target (predicted from the tokens before it).</summary>
    public bool[] TrainMask { get; }

    public int Length => InputIds.Length;

    /// <summary>Number of trained tokens.</summary>
    public int TrainedCount => TrainMask.Count(m => m);
}
