// The datasets shipped in datasets/ (arithmetic, countdown, preferences, preferences-hard): their sizes and seeds, the row
// layout of their Parquet files, and an atomic writer (temp file + rename). Test splits never repeat a
// training prompt. `dotnet run --project datasets/tools/PostTrain.DatasetGen -- datasets` rewrites them.
using System.Text.Json.Serialization;
using Parquet.Serialization;

namespace PostTrain.Data.Generators;

public static class DatasetFiles
{
    public static (List<ArithmeticProblem> Train, List<ArithmeticProblem> Test) Arithmetic()
    {
        var train = ArithmeticGenerator.Generate(2000, seed: 1);
        return (train, ArithmeticGenerator.Generate(200, seed: 2, train.Select(p => p.Prompt).ToHashSet()));
    }

    /// <summary>The shipped shape of the Countdown puzzles: 3 numbers in 1..10 (small enough that the tiny models the
    /// CPU quickstarts use solve some, so GRPO has something to reinforce; 3-4 numbers in 1..25 stayed at 0-2%).</summary>
    public static readonly CountdownShape CountdownShipped = new(MinNumbers: 3, MaxNumbers: 3, MaxNumber: 10);

    public static (List<CountdownProblem> Train, List<CountdownProblem> Test) Countdown(CountdownShape? shape = null)
    {
        shape ??= CountdownShipped;
        var train = CountdownGenerator.Generate(2000, seed: 3, shape: shape);
        return (train, CountdownGenerator.Generate(200, seed: 4, train.Select(p => p.Prompt).ToHashSet(), shape));
    }

    /// <summary>Writes a Countdown train/test pair of another shape into <paramref name="dir"/> (experiments).</summary>
    public static void WriteCountdown(string dir, CountdownShape shape)
    {
        var (train, test) = Countdown(shape);
        WriteParquet(Path.Combine(dir, "train.parquet"), ToRows(train));
        WriteParquet(Path.Combine(dir, "test.parquet"), ToRows(test));
    }

    /// <summary>datasets/preferences (Form: well-formed vs sloppy answers) or, with WrongResult,
    /// datasets/preferences-hard (right vs wrong last result); same problems and seeds for both.</summary>
    public static (List<PreferencePair> Train, List<PreferencePair> Test) Preferences(PreferenceKind kind = PreferenceKind.Form)
    {
        var train = PreferenceGenerator.Generate(500, seed: 5, kind: kind);
        return (train, PreferenceGenerator.Generate(50, seed: 6, train.Select(p => p.Prompt).ToHashSet(), kind));
    }

    /// <summary>Writes every dataset under <paramref name="datasetsDir"/> (e.g. "datasets").</summary>
    public static IReadOnlyList<string> WriteAll(string datasetsDir)
    {
        var written = new List<string>();
        void Write<T>(string name, string split, IReadOnlyCollection<T> rows)
        {
            var path = Path.Combine(datasetsDir, name, $"{split}.parquet");
            WriteParquet(path, rows);
            written.Add(path);
        }
        var (at, ae) = Arithmetic();
        Write("arithmetic", "train", ToRows(at));
        Write("arithmetic", "test", ToRows(ae));
        var (ct, ce) = Countdown();
        Write("countdown", "train", ToRows(ct));
        Write("countdown", "test", ToRows(ce));
        var (pt, pe) = Preferences();
        Write("preferences", "train", ToRows(pt));
        Write("preferences", "test", ToRows(pe));
        var (ht, he) = Preferences(PreferenceKind.WrongResult);
        Write("preferences-hard", "train", ToRows(ht));
        Write("preferences-hard", "test", ToRows(he));
        return written;
    }

    /// <summary>Serializes rows to Parquet at <paramref name="path"/> atomically (temp file, then rename).</summary>
    public static void WriteParquet<T>(string path, IReadOnlyCollection<T> rows)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + $".tmp-{Guid.NewGuid():N}";
        try
        {
            using (var stream = File.Create(temp))
                ParquetSerializer.SerializeAsync(rows, stream).GetAwaiter().GetResult();
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    public static List<ArithmeticRow> ToRows(IEnumerable<ArithmeticProblem> problems) =>
        [.. problems.Select(p => new ArithmeticRow { Prompt = p.Prompt, Completion = p.Completion, Answer = p.Answer, Category = p.Category })];

    public static List<CountdownRow> ToRows(IEnumerable<CountdownProblem> problems) =>
        [.. problems.Select(p => new CountdownRow { Prompt = p.Prompt, Numbers = [.. p.Numbers], Target = p.Target, Answer = p.Answer, Completion = p.Completion })];

    public static List<PreferenceRow> ToRows(IEnumerable<PreferencePair> pairs) =>
        [.. pairs.Select(p => new PreferenceRow { Prompt = p.Prompt, Chosen = p.Chosen, Rejected = p.Rejected, Answer = p.Answer, Category = p.Category, Flaw = p.Flaw })];

    public sealed class ArithmeticRow
    {
        [JsonPropertyName("prompt")] public string Prompt { get; set; } = "";
        [JsonPropertyName("completion")] public string Completion { get; set; } = "";
        [JsonPropertyName("answer")] public int Answer { get; set; }
        [JsonPropertyName("category")] public string Category { get; set; } = "";
    }

    public sealed class CountdownRow
    {
        [JsonPropertyName("prompt")] public string Prompt { get; set; } = "";
        [JsonPropertyName("numbers")] public List<int> Numbers { get; set; } = [];
        [JsonPropertyName("target")] public int Target { get; set; }
        [JsonPropertyName("answer")] public string Answer { get; set; } = "";
        [JsonPropertyName("completion")] public string Completion { get; set; } = "";
    }

    public sealed class PreferenceRow
    {
        [JsonPropertyName("prompt")] public string Prompt { get; set; } = "";
        [JsonPropertyName("chosen")] public string Chosen { get; set; } = "";
        [JsonPropertyName("rejected")] public string Rejected { get; set; } = "";
        [JsonPropertyName("answer")] public int Answer { get; set; }
        [JsonPropertyName("category")] public string Category { get; set; } = "";
        [JsonPropertyName("flaw")] public string Flaw { get; set; } = "";
    }
}
