// Preference pairs for reward modelling, read once into memory (preference sets are small: thousands of rows): each
// row's prompt + chosen and prompt + rejected rendered by the chat template exactly as SFT renders a conversation (so
// the reward is read at the assistant's end-of-sentence token), plus the optional margin. Truncation rule: a pair
// whose chosen or rejected rendering is longer than max_seq_len is dropped and counted (cutting either end would
// remove the prompt or the answer being judged; TRL's RewardTrainer filters the same way). Bad rows are errors naming
// the file, row and column (or skipped and counted with skip_bad_rows). Epoch orders are a pure function of
// (seed, epoch), so a resumed run continues at the same pair.
using PostTrain.Data;
using PostTrain.Data.Examples;
using PostTrain.Data.Readers;
using PostTrain.Data.Templates;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.RewardModeling;

public sealed record PreferencePair(int[] Chosen, int[] Rejected, double Margin);

public sealed class PreferencePairs
{
    public IReadOnlyList<PreferencePair> Items { get; }
    public bool HasMargin { get; }
    /// <summary>Pairs dropped because a rendering was longer than max_seq_len.</summary>
    public int DroppedTooLong { get; }
    public DataStats Stats { get; } = new();

    public PreferencePairs(string path, RmDataConfig cfg, IChatTemplate template, int? maxRows = null, string key = "data.path")
    {
        if (!File.Exists(path)) throw new RecipeConfigException($"{key}: '{path}' not found");
        var parser = new ExampleParser(Columns(cfg.Columns));
        var items = new List<PreferencePair>();
        var rows = DatasetReader.Read(path, cfg.SkipBadRows, Stats);
        foreach (var row in rows)
        {
            if (maxRows is int m && items.Count >= m) break;
            PreferencePair pair;
            try
            {
                var ex = parser.Preference(row);
                double margin = cfg.MarginColumn is { } mc ? Margin(row, mc) : 0.0;
                pair = new PreferencePair(template.Render(ex.ChosenChat).InputIds, template.Render(ex.RejectedChat).InputIds, margin);
            }
            catch (DataException e) when (cfg.SkipBadRows)
            {
                Stats.AddSkipped(e);
                continue;
            }
            if (Math.Max(pair.Chosen.Length, pair.Rejected.Length) > cfg.MaxSeqLen) { DroppedTooLong++; Stats.AddDropped(); continue; }
            items.Add(pair);
        }
        if (items.Count == 0)
            throw new RecipeConfigException($"{key}: '{path}' has no usable pairs ({Stats}; {DroppedTooLong} longer than data.max_seq_len {cfg.MaxSeqLen})");
        Items = items;
        HasMargin = cfg.MarginColumn is not null;
    }

    private static ColumnMap Columns(Dictionary<string, string> columns)
    {
        var m = ColumnMap.Default;
        foreach (var (k, v) in columns)
            m = k switch
            {
                "prompt" => m with { Prompt = v },
                "chosen" => m with { Chosen = v },
                "rejected" => m with { Rejected = v },
                _ => throw new RecipeConfigException($"data.columns.{k}: unknown column role (prompt, chosen, rejected)"),
            };
        return m;
    }

    private static double Margin(DataRow row, string column)
    {
        if (!row.Columns.TryGetValue(column, out var v))
            throw DataException.ForRow(row, column, $"missing margin column (row has: {string.Join(", ", row.Columns.Keys)})");
        double m = v switch
        {
            double d => d,
            float f => f,
            int i => i,
            long l => l,
            _ => throw DataException.ForRow(row, column, $"margin must be a number, got {(v is null ? "null" : v.GetType().Name)}"),
        };
        return double.IsFinite(m) ? m : throw DataException.ForRow(row, column, $"margin must be finite, got {m}");
    }

    /// <summary>The order of epoch <paramref name="epoch"/>: shuffled from (seed, epoch), or file order.</summary>
    public int[] Order(long seed, int epoch, bool shuffle)
    {
        var order = Enumerable.Range(0, Items.Count).ToArray();
        if (shuffle) new Rng(seed * 1_000_003 + epoch).Shuffle(order);
        return order;
    }
}
