// n-gram decontamination (GPT-3 / Llama style): a training problem is dropped when it shares any word n-gram with a
// text of an eval set (default n = 13). Words are maximal runs of letters or digits, lower-cased, so punctuation and
// spacing do not hide a match. Texts shorter than n words have no n-gram; they match only a text with the same word
// sequence (an exact duplicate). Exact n-grams in a hash set: memory grows with the eval sets (fine for benchmarks of
// thousands of problems).
using System.Text;
using PostTrain.Data;
using PostTrain.Data.Readers;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Distill;

public sealed class NgramIndex
{
    private readonly HashSet<string> _grams = new(StringComparer.Ordinal);
    private readonly HashSet<string> _short = new(StringComparer.Ordinal);

    public int N { get; }
    public int Texts { get; private set; }

    public NgramIndex(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "n-gram size must be >= 1");
        N = n;
    }

    public void Add(string text)
    {
        var words = Words(text).ToArray();
        Texts++;
        if (words.Length < N) { _short.Add(string.Join(' ', words)); return; }
        for (int i = 0; i + N <= words.Length; i++) _grams.Add(string.Join(' ', words, i, N));
    }

    /// <summary>True when <paramref name="text"/> shares an n-gram with an indexed text (or, when short, equals one).</summary>
    public bool Overlaps(string text)
    {
        var words = Words(text).ToArray();
        if (words.Length < N) return _short.Contains(string.Join(' ', words));
        for (int i = 0; i + N <= words.Length; i++)
            if (_grams.Contains(string.Join(' ', words, i, N))) return true;
        return false;
    }

    public static List<string> Words(string text)
    {
        var words = new List<string>();
        var sb = new StringBuilder();
        foreach (var c in text)
        {
            if (char.IsLetterOrDigit(c)) sb.Append(char.ToLowerInvariant(c));
            else if (sb.Length > 0) { words.Add(sb.ToString()); sb.Clear(); }
        }
        if (sb.Length > 0) words.Add(sb.ToString());
        return words;
    }

    /// <summary>The index of every eval set's column (rows without the column are errors naming file and row).</summary>
    public static NgramIndex FromEvalSets(DecontaminationConfig cfg)
    {
        if (cfg.Ngram < 1) throw new RecipeConfigException($"decontamination.ngram: must be >= 1, got {cfg.Ngram}");
        var index = new NgramIndex(cfg.Ngram);
        for (int i = 0; i < cfg.Paths.Count; i++)
        {
            if (!DatasetReader.Exists(cfg.Paths[i]))
                throw new RecipeConfigException($"decontamination.paths[{i}]: '{cfg.Paths[i]}' not found");
            foreach (var row in DatasetReader.Read(cfg.Paths[i]))
            {
                if (row[cfg.Column] is not string text)
                    throw new DataException(row.File, row.Location, cfg.Column, $"decontamination.column '{cfg.Column}' is missing or not a string");
                index.Add(text);
            }
        }
        return index;
    }
}
