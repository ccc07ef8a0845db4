// Learning-rate schedules as pure functions of the optimizer step (0-based: the step about to be taken).
// Warmup is linear and reaches the peak on step warmup_steps-1 (lr = peak * (step+1) / warmup_steps), so the
// first step does not waste itself at lr 0. Because they are pure, resuming needs only the step.
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Infra;

public interface ILrSchedule
{
    double At(long step);
}

/// <summary>Linear warmup, then constant at the peak.</summary>
public sealed record WarmupConstantSchedule(double PeakLr, long WarmupSteps) : ILrSchedule
{
    public double At(long step) => step < WarmupSteps ? LrSchedules.Warmup(PeakLr, WarmupSteps, step) : PeakLr;
}

/// <summary>Linear warmup, then half a cosine from the peak (at step warmup_steps) down to min_lr at total_steps,
/// then min_lr.</summary>
public sealed record WarmupCosineSchedule(double PeakLr, long WarmupSteps, long TotalSteps, double MinLr) : ILrSchedule
{
    public double At(long step) =>
        step < WarmupSteps ? LrSchedules.Warmup(PeakLr, WarmupSteps, step)
        : LrSchedules.Cosine(PeakLr, MinLr, WarmupSteps, TotalSteps, step);
}

/// <summary>DeepSeek-V3's shape: linear warmup, constant at the peak until decay_start, cosine down to min_lr at
/// decay_end, then constant at min_lr.</summary>
public sealed record WarmupStableDecaySchedule(double PeakLr, long WarmupSteps, long DecayStart, long DecayEnd, double MinLr) : ILrSchedule
{
    public double At(long step) =>
        step < WarmupSteps ? LrSchedules.Warmup(PeakLr, WarmupSteps, step)
        : step < DecayStart ? PeakLr
        : LrSchedules.Cosine(PeakLr, MinLr, DecayStart, DecayEnd, step);
}

public static class LrSchedules
{
    internal static double Warmup(double peak, long warmupSteps, long step) => peak * (step + 1) / warmupSteps;

    /// <summary>peak at <paramref name="start"/>, min at <paramref name="end"/> and after.</summary>
    internal static double Cosine(double peak, double min, long start, long end, long step)
    {
        if (step >= end) return min;
        double progress = (double)(step - start) / (end - start);
        return min + (peak - min) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }

    /// <summary>The schedule a recipe's <c>scheduler</c> section describes; errors name the offending keys.</summary>
    public static ILrSchedule FromConfig(SchedulerConfig c, double peakLr, long maxSteps)
    {
        if (c.WarmupSteps < 0) throw new RecipeConfigException($"scheduler.warmup_steps: must be >= 0, got {c.WarmupSteps}");
        if (c.MinLr < 0 || c.MinLr > peakLr) throw new RecipeConfigException($"scheduler.min_lr: must be in [0, optimizer.lr = {peakLr}], got {c.MinLr}");
        switch (c.Name)
        {
            case ScheduleKind.Constant:
                return new WarmupConstantSchedule(peakLr, c.WarmupSteps);
            case ScheduleKind.Cosine:
                if (maxSteps <= c.WarmupSteps) throw new RecipeConfigException($"scheduler.warmup_steps: must be < max_steps ({maxSteps}) for cosine, got {c.WarmupSteps}");
                return new WarmupCosineSchedule(peakLr, c.WarmupSteps, maxSteps, c.MinLr);
            case ScheduleKind.WarmupStableDecay:
                long start = c.DecayStart ?? throw new RecipeConfigException("scheduler.decay_start: required for warmup_stable_decay");
                long end = c.DecayEnd ?? maxSteps;
                if (start < c.WarmupSteps) throw new RecipeConfigException($"scheduler.decay_start: must be >= scheduler.warmup_steps ({c.WarmupSteps}), got {start}");
                if (end <= start) throw new RecipeConfigException($"scheduler.decay_end: must be > scheduler.decay_start ({start}), got {end}");
                return new WarmupStableDecaySchedule(peakLr, c.WarmupSteps, start, end, c.MinLr);
            default:
                throw new RecipeConfigException($"scheduler.name: unsupported schedule {c.Name}");
        }
    }
}
