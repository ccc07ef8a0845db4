// The datasets shipped in datasets/ (arithmetic, countdown, preferences, preferences-hard, code): their sizes and seeds, the row
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

    /// <summary>datasets/code/{train,rl,test}.parquet: 4,000 training tasks, 2,000 reinforcement-learning prompts (functions
    /// with constants train never shows) and 400 held-out tasks (functions in neither; half of each split JavaScript,
    /// half C#).</summary>
    public static (List<CodeTask> Train, List<CodeTask> Rl, List<CodeTask> Test) Code()
    {
        var train = CodeTaskGenerator.Generate(4000, seed: 7, CodeSplit.Train);
        var rl = CodeTaskGenerator.Generate(2000, seed: 10, CodeSplit.Rl);
        return (train, rl, CodeTaskGenerator.Generate(400, seed: 8, CodeSplit.Test));
    }

    /// <summary>Writes datasets/code/{train,rl,test}.parquet under <paramref name="datasetsDir"/>.</summary>
    public static IReadOnlyList<string> WriteCode(string datasetsDir)
    {
        var (train, rl, test) = Code();
        var splits = new[] { ("train", train), ("rl", rl), ("test", test) };
        var paths = splits.Select(s => Path.Combine(datasetsDir, "code", s.Item1 + ".parquet")).ToArray();
        for (int i = 0; i < splits.Length; i++) WriteParquet(paths[i], ToRows(splits[i].Item2));
        return paths;
    }

    /// <summary>Pre-training rows for a code base model: <paramref name="count"/> tasks of the training split's functions
    /// (another seed; no rl or held-out function, no prompt of the shipped training split), as JSONL {prompt, completion},
    /// written atomically. wide: the families' wide constants (CodeTemplate.WideConstants), so that each function
    /// appears about once or a few times. drills: that share of extra rows (0 to 0.9 of all rows) are copy drills
    /// (CopyDrills), spread evenly between the tasks, which stay the same tasks in the same order. wideCap: wide
    /// constants and drill numbers at most that magnitude, digit counts equally likely (CodeTaskGenerator.CapMagnitude),
    /// so the text's constants are as long as the rl and test rows'. Returns the row count.</summary>
    public static int WriteCodePretrain(string path, int count, bool wide = false, double drills = 0, int? wideCap = null)
    {
        if (!(drills >= 0 && drills <= 0.9)) throw new ArgumentOutOfRangeException(nameof(drills), drills, "the drill share is in [0, 0.9]");
        var (train, _, _) = Code();
        var tasks = CodeTaskGenerator.Generate(count, seed: 9, CodeSplit.Train, train.Select(t => t.Prompt).ToHashSet(), wide, wideCap);
        // after task i come the drills that bring their count to round((i + 1) * share / (1 - share))
        double perTask = drills / (1 - drills);
        var extra = drills > 0 ? CopyDrills.Generate((int)Math.Round(count * perTask), seed: 12, wideCap) : [];
        var rows = new List<(string Prompt, string Completion)>(tasks.Count + extra.Count);
        int used = 0;
        for (int i = 0; i < tasks.Count; i++)
        {
            rows.Add((tasks[i].Prompt, tasks[i].Completion));
            for (int due = (int)Math.Round((i + 1) * perTask); used < due && used < extra.Count; used++) rows.Add(extra[used]);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + $".tmp-{Guid.NewGuid():N}";
        try
        {
            File.WriteAllLines(temp, rows.Select(t => System.Text.Json.JsonSerializer.Serialize(new { prompt = t.Prompt, completion = t.Completion })));
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        return rows.Count;
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
        written.AddRange(WriteCode(datasetsDir));
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

    public static List<CodeRow> ToRows(IEnumerable<CodeTask> tasks) =>
        [.. tasks.Select(t => new CodeRow { Prompt = t.Prompt, Completion = t.Completion, Tests = t.Tests, Language = t.Language,
            Category = t.Category, Family = t.Family, Function = t.Function, Level = t.Level, HeldOut = t.HeldOut })];

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

    public sealed class CodeRow
    {
        [JsonPropertyName("prompt")] public string Prompt { get; set; } = "";
        [JsonPropertyName("completion")] public string Completion { get; set; } = "";
        [JsonPropertyName("tests")] public string Tests { get; set; } = "";
        [JsonPropertyName("language")] public string Language { get; set; } = "";
        [JsonPropertyName("category")] public string Category { get; set; } = "";
        [JsonPropertyName("family")] public string Family { get; set; } = "";
        [JsonPropertyName("function")] public string Function { get; set; } = "";
        [JsonPropertyName("level")] public int Level { get; set; }
        [JsonPropertyName("held_out")] public string HeldOut { get; set; } = "";
    }
}
