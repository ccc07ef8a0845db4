// Progress of a training run, shown as a live bar on a terminal or as periodic plain lines elsewhere (CI, logs).
using PostTrain.Training.Recipes;
using Spectre.Console;

namespace PostTrain.Training.Infra;

public interface IProgressReporter : IDisposable
{
    /// <summary>After each optimizer step: steps completed, the step's loss and the tokens it processed.</summary>
    void Update(long step, double loss, long stepTokens);

    /// <summary>A log line that does not break the progress display.</summary>
    void Message(string line);
}

/// <summary>What the counted unit and the reported value are called (a data-generation run counts problems, not
/// optimizer steps, and reports a pass rate, not a loss).</summary>
public sealed record ProgressLabels(string Step = "step", string Value = "loss", string Rate = "steps")
{
    public static ProgressLabels Training { get; } = new();
}

public static class ProgressReporter
{
    /// <summary>auto = a bar when stdout is an interactive terminal, plain lines otherwise.</summary>
    public static IProgressReporter Create(ProgressMode mode, long totalSteps, long startStep, double plainIntervalSeconds, TextWriter plainOutput,
        ProgressLabels? labels = null)
    {
        bool bar = mode == ProgressMode.Bar
            || (mode == ProgressMode.Auto && !Console.IsOutputRedirected
               && AnsiConsole.Profile.Capabilities.Interactive && AnsiConsole.Profile.Capabilities.Ansi);
        return bar
            ? new SpectreProgressReporter(AnsiConsole.Console, totalSteps, startStep, labels)
            : new PlainProgressReporter(plainOutput, totalSteps, startStep, plainIntervalSeconds, labels: labels);
    }

    internal static string Rate(double perSecond, string unit) =>
        !double.IsFinite(perSecond) ? $"-- {unit}/s"
        : perSecond >= 1e6 ? $"{perSecond / 1e6:F2}M {unit}/s"
        : perSecond >= 1e4 ? $"{perSecond / 1e3:F1}k {unit}/s"
        : $"{perSecond:F2} {unit}/s";

    internal static string Duration(double seconds) =>
        double.IsFinite(seconds) && seconds >= 0 ? TimeSpan.FromSeconds(Math.Round(seconds)).ToString(seconds >= 86400 ? @"d\.hh\:mm\:ss" : @"hh\:mm\:ss") : "--:--:--";
}
