// Per-step metrics to metrics.jsonl (one flushed JSON object per line: step, unix time, seconds since start,
// then the named values in the order given; NaN/inf are written as the strings "NaN"/"Infinity"/"-Infinity")
// and, optionally, as TensorBoard scalars through TorchSharp's SummaryWriter (run_dir/tensorboard/).
// On resume, lines after the resumed step are dropped so the file reads as one run. Simplifications:
// TensorBoard events of a crashed tail are not purged; SummaryWriter takes int steps and whole-second
// wall times.
using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;

namespace PostTrain.Runtime;

public sealed class MetricsLogger : IDisposable
{
    public const string JsonlFileName = "metrics.jsonl";

    private readonly FileStream _jsonl;
    private readonly TorchSharp.Modules.SummaryWriter? _tensorboard;
    private readonly Func<DateTimeOffset> _clock;
    private readonly DateTimeOffset _start;

    public string JsonlPath { get; }
    public string? TensorboardDir { get; }

    public MetricsLogger(string runDir, bool tensorboard, long? resumedFromStep = null, Func<DateTimeOffset>? clock = null)
    {
        Directory.CreateDirectory(runDir);
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
        _start = _clock();
        JsonlPath = Path.Combine(runDir, JsonlFileName);
        if (resumedFromStep is long step && File.Exists(JsonlPath)) DropLinesAfter(JsonlPath, step);
        else if (resumedFromStep is null && File.Exists(JsonlPath)) File.Delete(JsonlPath);
        _jsonl = new FileStream(JsonlPath, FileMode.Append, FileAccess.Write, FileShare.Read);
        if (tensorboard)
        {
            TensorboardDir = Path.Combine(runDir, "tensorboard");
            _tensorboard = torch.utils.tensorboard.SummaryWriter(TensorboardDir);
        }
    }

    public void Log(long step, params (string Name, double Value)[] values) => Log(step, (IEnumerable<(string, double)>)values);

    public void Log(long step, IEnumerable<(string Name, double Value)> values)
    {
        var now = _clock();
        double unix = now.ToUnixTimeMilliseconds() / 1000.0;
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("step", step);
            w.WriteNumber("time", unix);
            w.WriteNumber("elapsed_s", Math.Round((now - _start).TotalSeconds, 3));
            foreach (var (name, value) in values)
            {
                if (name is "step" or "time" or "elapsed_s") throw new ArgumentException($"metric name '{name}' is reserved", nameof(values));
                if (double.IsFinite(value)) w.WriteNumber(name, value);
                else w.WriteString(name, value.ToString(CultureInfo.InvariantCulture));
                _tensorboard?.add_scalar(name, (float)value, checked((int)step), now.ToUnixTimeSeconds());
            }
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        _jsonl.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
        _jsonl.Flush();
    }

    /// <summary>Rewrites the file keeping lines with step &lt;= <paramref name="step"/>; a torn last line is dropped.</summary>
    private static void DropLinesAfter(string path, long step)
    {
        var kept = new StringBuilder();
        foreach (var line in File.ReadLines(path))
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.GetProperty("step").GetInt64() <= step) kept.Append(line).Append('\n');
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                // a line torn by a crash: not part of the resumed run
            }
        }
        AtomicFile.WriteAllText(path, kept.ToString());
    }

    public void Dispose() => _jsonl.Dispose();
}
