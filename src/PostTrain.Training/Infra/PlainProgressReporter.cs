// Progress as plain log lines (for CI and redirected output): the first step, then at most one line per
// interval, and the last step. Rates are measured over the window since the previous line; the ETA assumes
// the remaining steps run at that rate.
using System.Globalization;

namespace PostTrain.Training.Infra;

public sealed class PlainProgressReporter : IProgressReporter
{
    private readonly TextWriter _out;
    private readonly long _totalSteps;
    private readonly double _intervalSeconds;
    private readonly Func<DateTimeOffset> _clock;
    private DateTimeOffset _lastTime;
    private long _lastStep;
    private long _tokensSinceLast;
    private bool _printedAny;
    private readonly ProgressLabels _labels;

    public PlainProgressReporter(TextWriter output, long totalSteps, long startStep, double intervalSeconds, Func<DateTimeOffset>? clock = null,
        ProgressLabels? labels = null)
    {
        _labels = labels ?? ProgressLabels.Training;
        _out = output;
        _totalSteps = totalSteps;
        _intervalSeconds = intervalSeconds;
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
        _lastTime = _clock();
        _lastStep = startStep;
    }

    public void Update(long step, double loss, long stepTokens)
    {
        _tokensSinceLast += stepTokens;
        var now = _clock();
        double dt = (now - _lastTime).TotalSeconds;
        if (_printedAny && dt < _intervalSeconds && step < _totalSteps) return;
        double stepsPerSecond = dt > 0 ? (step - _lastStep) / dt : double.NaN;
        double tokensPerSecond = dt > 0 ? _tokensSinceLast / dt : double.NaN;
        double eta = (_totalSteps - step) / stepsPerSecond;
        var inv = CultureInfo.InvariantCulture;
        _out.WriteLine(string.Create(inv,
            $"{_labels.Step} {step}/{_totalSteps} ({100.0 * step / _totalSteps:F1}%) | {_labels.Value} {loss:F4} | {ProgressReporter.Rate(stepsPerSecond, _labels.Rate)} | {ProgressReporter.Rate(tokensPerSecond, "tok")} | eta {ProgressReporter.Duration(eta)}"));
        _out.Flush();
        _printedAny = true;
        _lastTime = now;
        _lastStep = step;
        _tokensSinceLast = 0;
    }

    public void Message(string line)
    {
        _out.WriteLine(line);
        _out.Flush();
    }

    public void Dispose() { }
}
