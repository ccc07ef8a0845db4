// LR schedules against hand-computed values.
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Tests.Infra;

public sealed class LrScheduleTests
{
    [Fact]
    public void Warmup_then_constant()
    {
        var s = new WarmupConstantSchedule(PeakLr: 1.0, WarmupSteps: 4);
        Assert.Equal([0.25, 0.5, 0.75, 1.0, 1.0, 1.0], Enumerable.Range(0, 6).Select(i => s.At(i)));
        Assert.Equal(3.0, new WarmupConstantSchedule(3.0, 0).At(0));
    }

    [Fact]
    public void Warmup_then_cosine_to_min()
    {
        var s = new WarmupCosineSchedule(PeakLr: 1.0, WarmupSteps: 2, TotalSteps: 10, MinLr: 0.1);
        Assert.Equal(0.5, s.At(0), 12);
        Assert.Equal(1.0, s.At(1), 12);
        Assert.Equal(1.0, s.At(2), 12);                            // cosine starts at the peak
        Assert.Equal(0.1 + 0.9 * 0.5 * (1 + Math.Sqrt(0.5)), s.At(4), 12); // a quarter of the way: cos(pi/4)
        Assert.Equal(0.55, s.At(6), 12);                           // half way: the mean of peak and min
        Assert.Equal(0.1, s.At(10), 12);
        Assert.Equal(0.1, s.At(12), 12);
    }

    [Fact]
    public void DeepSeek_warmup_constant_cosine_constant()
    {
        var s = new WarmupStableDecaySchedule(PeakLr: 2.0, WarmupSteps: 2, DecayStart: 5, DecayEnd: 9, MinLr: 0.2);
        Assert.Equal(1.0, s.At(0), 12);
        Assert.Equal(2.0, s.At(1), 12);
        Assert.Equal(2.0, s.At(4), 12);
        Assert.Equal(2.0, s.At(5), 12);
        Assert.Equal(1.7363961030678928, s.At(6), 12);  // 0.2 + 1.8 * (1 + cos(pi/4)) / 2
        Assert.Equal(1.1, s.At(7), 12);
        Assert.Equal(0.2, s.At(9), 12);
        Assert.Equal(0.2, s.At(1000), 12);
    }

    [Fact]
    public void From_config_builds_each_kind_and_names_bad_keys()
    {
        var wsd = LrSchedules.FromConfig(new SchedulerConfig { Name = ScheduleKind.WarmupStableDecay, WarmupSteps = 2, DecayStart = 5, MinLr = 0.2 }, 2.0, 9);
        Assert.Equal(new WarmupStableDecaySchedule(2.0, 2, 5, 9, 0.2), wsd);
        Assert.Equal(new WarmupCosineSchedule(1.0, 3, 50, 0.0), LrSchedules.FromConfig(new SchedulerConfig { WarmupSteps = 3 }, 1.0, 50));
        Assert.Equal(new WarmupConstantSchedule(1.0, 3), LrSchedules.FromConfig(new SchedulerConfig { Name = ScheduleKind.Constant, WarmupSteps = 3 }, 1.0, 50));

        Assert.StartsWith("scheduler.decay_start: required",
            Assert.Throws<RecipeConfigException>(() => LrSchedules.FromConfig(new SchedulerConfig { Name = ScheduleKind.WarmupStableDecay }, 1, 10)).Message);
        Assert.StartsWith("scheduler.decay_end: must be > scheduler.decay_start (8)",
            Assert.Throws<RecipeConfigException>(() => LrSchedules.FromConfig(new SchedulerConfig { Name = ScheduleKind.WarmupStableDecay, WarmupSteps = 1, DecayStart = 8, DecayEnd = 8 }, 1, 10)).Message);
        Assert.StartsWith("scheduler.min_lr",
            Assert.Throws<RecipeConfigException>(() => LrSchedules.FromConfig(new SchedulerConfig { MinLr = 2 }, 1, 10)).Message);
        Assert.StartsWith("scheduler.warmup_steps: must be < max_steps (10)",
            Assert.Throws<RecipeConfigException>(() => LrSchedules.FromConfig(new SchedulerConfig { WarmupSteps = 10 }, 1, 10)).Message);
    }
}
