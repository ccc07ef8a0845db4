// SFT data: a deterministic stream of batches per epoch. Rows are read streaming (JSONL / Parquet), rendered by the
// chat template (which marks the tokens the loss trains on), shuffled in a seeded buffer, packed best-fit into rows of
// max_seq_len (position ids restart per example, attention stays inside each example) or padded one per row, and cut
// into batches. The same (seed, epoch) always gives the same batches, so a resumed run skips to its data position.
using PostTrain.Data;
using PostTrain.Data.Examples;
using PostTrain.Data.Packing;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Sft;

public sealed record SftBatch(IReadOnlyList<PackedRow> Rows)
{
    public long TargetTokens => Rows.Sum(r => r.Labels.LongCount(l => l != -100));
    public long RealTokens => Rows.Sum(r => r.SequenceIds.LongCount(s => s >= 0));

    /// <summary>Targets of MTP depth k: position t predicts labels[t+k] when t and t+k are in one example.</summary>
    public long MtpTargetTokens(int k) => Rows.Sum(r =>
    {
        long n = 0;
        for (int t = 0; t + k < r.Length; t++)
            if (r.Labels[t + k] != -100 && r.SequenceIds[t] == r.SequenceIds[t + k]) n++;
        return n;
    });
}

public sealed class SftBatches(SftDataConfig cfg, ITokenizer tokenizer, DataStats stats, string? modelDir = null)
{
    private const int ShuffleBuffer = 4096;
    private readonly IChatTemplate template = ChatTemplates.Resolve(cfg.ChatTemplate, tokenizer, modelDir, kwargs: ChatTemplates.ParseKwargs(cfg.ChatTemplateKwargs));

    private ColumnMap Columns()
    {
        var m = ColumnMap.Default;
        foreach (var (k, v) in cfg.Columns)
            m = k switch
            {
                "prompt" => m with { Prompt = v },
                "completion" => m with { Completion = v },
                "messages" => m with { Messages = v },
                "text" => m with { Text = v },
                _ => throw new RecipeConfigException($"data.columns.{k}: unknown column role (prompt, completion, messages, text)"),
            };
        return m;
    }

    private IEnumerable<TokenizedExample> Examples(string path)
    {
        var cols = Columns();
        IEnumerable<TokenizedExample> examples = cfg.Format switch
        {
            SftFormat.PromptCompletion => Dataset.PromptCompletion(path, cols, cfg.SkipBadRows, stats).Select(template.Render),
            SftFormat.Messages => Dataset.Chat(path, cols, cfg.SkipBadRows, stats).Select(template.Render),
            SftFormat.Text => Dataset.Text(path, cols, cfg.SkipBadRows, stats).Select(e => TextRenderer.Render(tokenizer, e, addBos: true, addEos: true)),
            _ => throw new InvalidOperationException(),
        };
        return cfg.TrainOn == TrainOn.All ? examples.Select(e => new TokenizedExample(e.InputIds, e.InputIds.Select(_ => true).ToArray())) : examples;
    }

    /// <summary>The batches of one epoch of <paramref name="path"/>, shuffled with (seed, epoch) when asked.</summary>
    public IEnumerable<SftBatch> Epoch(string path, long seed, int epoch, bool shuffle)
    {
        var examples = Examples(path);
        if (shuffle) examples = BufferShuffle(examples, new Rng(seed * 1_000_003 + epoch));
        var rows = cfg.Packed
            ? Packer.BestFit(examples, cfg.MaxSeqLen, tokenizer.PadId, stats: stats)
            : Packer.Unpacked(examples, cfg.MaxSeqLen, tokenizer.PadId, padToMaxLength: true, stats: stats);
        var batch = new List<PackedRow>(cfg.BatchSize);
        foreach (var row in rows)
        {
            batch.Add(row);
            if (batch.Count == cfg.BatchSize) { yield return new SftBatch(batch); batch = new List<PackedRow>(cfg.BatchSize); }
        }
        if (batch.Count > 0) yield return new SftBatch(batch);
    }

    private static IEnumerable<T> BufferShuffle<T>(IEnumerable<T> source, Rng rng)
    {
        var buffer = new List<T>(ShuffleBuffer);
        foreach (var item in source)
        {
            if (buffer.Count < ShuffleBuffer) { buffer.Add(item); continue; }
            int i = (int)(rng.NextDouble() * buffer.Count);
            yield return buffer[i];
            buffer[i] = item;
        }
        var rest = buffer.ToArray();
        rng.Shuffle(rest);
        foreach (var item in rest) yield return item;
    }
}
