// Progress as a live Spectre.Console bar: step, loss and rates in the description, then bar, percentage,
// remaining time (Spectre's own estimate from recent steps) and a spinner. The bar counts this session's
// steps (start..total) so a resumed run's jump does not distort the speed estimate. Rendering runs on its own
// task; Update only sets fields, so it costs the training loop nothing.
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace PostTrain.Training.Infra;

public sealed class SpectreProgressReporter : IProgressReporter
{
    private readonly IAnsiConsole _console;
    private readonly long _totalSteps;
    private readonly long _startStep;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _render;
    private readonly ProgressTask _task;
    private long _tokens;
    private readonly ProgressLabels _labels;

    public SpectreProgressReporter(IAnsiConsole console, long totalSteps, long startStep, ProgressLabels? labels = null)
    {
        _labels = labels ?? ProgressLabels.Training;
        _console = console;
        _totalSteps = totalSteps;
        _startStep = startStep;
        var created = new TaskCompletionSource<ProgressTask>(TaskCreationOptions.RunContinuationsAsynchronously);
        _render = Task.Run(() => console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(Describe(startStep, double.NaN, 0), maxValue: Math.Max(1, totalSteps - startStep));
                created.SetResult(task);
                await _done.Task;
                task.StopTask();
            }));
        Task.WaitAny(created.Task, _render);
        if (!created.Task.IsCompleted) _render.GetAwaiter().GetResult(); // rethrows why the display failed to start
        _task = created.Task.Result;
    }

    public void Update(long step, double loss, long stepTokens)
    {
        _tokens += stepTokens;
        double seconds = Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
        _task.Description = Describe(step, loss, (step - _startStep) / seconds, _tokens / seconds);
        _task.Value = step - _startStep;
    }

    private string Describe(long step, double loss, double stepsPerSecond, double tokensPerSecond = 0) => Markup.Escape(string.Create(
        CultureInfo.InvariantCulture,
        $"{_labels.Step} {step}/{_totalSteps} | {_labels.Value} {loss:F4} | {ProgressReporter.Rate(stepsPerSecond, _labels.Rate)} | {ProgressReporter.Rate(tokensPerSecond, "tok")}"));

    public void Message(string line) => _console.WriteLine(line);

    public void Dispose()
    {
        _done.TrySetResult();
        _render.GetAwaiter().GetResult();
    }
}
