// Guards training against NaN/inf losses: the trainer asks before each optimizer step; a non-finite loss skips
// that step (zero the gradients, do not step), and too many in a row stop the run with a clear error.
namespace PostTrain.Training.Infra;

public enum LossVerdict { Continue, Skip }

public sealed class TrainingStoppedException(string message) : Exception(message);

public sealed class NonFiniteGuard
{
    private readonly int _maxConsecutive;

    public NonFiniteGuard(int maxConsecutive)
    {
        if (maxConsecutive < 1) throw new ArgumentOutOfRangeException(nameof(maxConsecutive), maxConsecutive, "must be >= 1");
        _maxConsecutive = maxConsecutive;
    }

    /// <summary>Non-finite losses in a row so far.</summary>
    public int Consecutive { get; private set; }

    /// <summary>Steps skipped over the run.</summary>
    public long TotalSkipped { get; private set; }

    /// <summary>Continue for a finite loss; Skip for a non-finite one; throws TrainingStoppedException on the
    /// max_consecutive-th non-finite loss in a row.</summary>
    public LossVerdict Check(double loss, long step)
    {
        if (double.IsFinite(loss))
        {
            Consecutive = 0;
            return LossVerdict.Continue;
        }
        Consecutive++;
        TotalSkipped++;
        if (Consecutive >= _maxConsecutive)
            throw new TrainingStoppedException(
                $"step {step}: loss is {loss} for {Consecutive} steps in a row (max_consecutive_nonfinite = {_maxConsecutive}); " +
                "stopping. Lower optimizer.lr, check the data around this step, or resume from the last checkpoint.");
        return LossVerdict.Skip;
    }
}
