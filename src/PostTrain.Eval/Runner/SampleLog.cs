// samples.jsonl: every finished sample, appended (and flushed) as each batch is scored, so an interrupted eval resumes
// where it stopped. On open, the file is read back; a torn last line (a crash mid-write) is cut off before appending.
// A malformed line elsewhere is an error naming the file and line. A read-only log (write: false; the other ranks of a
// data-parallel eval) reads the file and keeps appended samples in memory only.
using System.Text;
using System.Text.Json;

namespace PostTrain.Eval.Runner;

public sealed class SampleLog : IDisposable
{
    public const string FileName = "samples.jsonl";

    private readonly FileStream? _stream;
    private readonly Dictionary<(string, string, string, int, int), EvalSample> _samples = new();

    public string Path { get; }

    public SampleLog(string outputDir, bool write = true)
    {
        Directory.CreateDirectory(outputDir);
        Path = System.IO.Path.Combine(outputDir, FileName);
        long keep = File.Exists(Path) ? ReadExisting() : 0;
        if (!write) return;
        _stream = new FileStream(Path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
        _stream.SetLength(keep);
        _stream.Seek(keep, SeekOrigin.Begin);
    }

    public int Count => _samples.Count;
    public IEnumerable<EvalSample> All => _samples.Values;
    public bool Contains((string, string, string, int, int) key) => _samples.ContainsKey(key);
    public EvalSample? Get((string, string, string, int, int) key) => _samples.GetValueOrDefault(key);

    /// <summary>Appends the samples as JSON lines and flushes them to disk.</summary>
    public void Append(IEnumerable<EvalSample> samples)
    {
        var buffer = new MemoryStream();
        foreach (var s in samples)
        {
            JsonSerializer.Serialize(buffer, s);
            buffer.WriteByte((byte)'\n');
            _samples[s.Key] = s;
        }
        _stream?.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
        _stream?.Flush(flushToDisk: true);
    }

    /// <summary>Loads complete lines; returns the byte length of the good prefix.</summary>
    private long ReadExisting()
    {
        var bytes = File.ReadAllBytes(Path);
        long good = 0;
        int line = 0, start = 0;
        while (start < bytes.Length)
        {
            int nl = Array.IndexOf(bytes, (byte)'\n', start);
            line++;
            if (nl < 0) break;   // torn last line: no newline, dropped
            var text = Encoding.UTF8.GetString(bytes, start, nl - start);
            if (text.Trim().Length > 0)
            {
                EvalSample s;
                try { s = JsonSerializer.Deserialize<EvalSample>(text) ?? throw new JsonException("null"); }
                catch (JsonException e) { throw new EvalConfigException($"{Path}: line {line}: not a sample ({e.Message})"); }
                _samples[s.Key] = s;
            }
            start = nl + 1;
            good = start;
        }
        return good;
    }

    public void Dispose() => _stream?.Dispose();
}
