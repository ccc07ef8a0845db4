// The prompts GRPO samples from, read once into memory (GRPO data sets are prompts only, a few thousand rows): each
// row's prompt rendered to token ids by the chat template (ending with the assistant prefix), its raw text and all
// its columns (rewards read e.g. `answer`). Epoch orders are a pure function of (seed, epoch), so a resumed run
// continues at the same prompt. Bad rows are errors naming the file and row.
using PostTrain.Data;
using PostTrain.Data.Examples;
using PostTrain.Data.Readers;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Grpo;

/// <summary>A prompt: its rendered ids, the raw prompt text (what rewards see) and the row's columns.</summary>
public sealed record PromptItem(int[] Ids, string Text, IReadOnlyDictionary<string, object?> Columns, string Where);

public sealed class PromptSet
{
    public IReadOnlyList<PromptItem> Items { get; }
    /// <summary>Rows skipped because the rendered prompt was longer than max_prompt_tokens.</summary>
    public int SkippedTooLong { get; }

    public PromptSet(string path, string promptColumn, IChatTemplate template, int maxPromptTokens, int? maxRows = null)
    {
        if (!DatasetReader.Exists(path)) throw new RecipeConfigException($"data.path: '{path}' not found");
        var items = new List<PromptItem>();
        foreach (var row in DatasetReader.Read(path))
        {
            if (maxRows is int m && items.Count >= m) break;
            if (row[promptColumn] is not string text)
                throw new DataException(row.File, row.Location, promptColumn, $"column '{promptColumn}' is missing or not a string");
            var ids = template.RenderPrompt([ChatMessage.User(text)]);
            if (ids.Length > maxPromptTokens) { SkippedTooLong++; continue; }
            items.Add(new PromptItem(ids, text, row.Columns, $"{row.File} {row.Location}"));
        }
        if (items.Count == 0) throw new RecipeConfigException($"data.path: '{path}' has no usable prompts ({SkippedTooLong} longer than {maxPromptTokens} tokens)");
        Items = items;
    }

    /// <summary>The order of epoch <paramref name="epoch"/>: shuffled from (seed, epoch), or file order.</summary>
    public int[] Order(long seed, int epoch, bool shuffle)
    {
        var order = Enumerable.Range(0, Items.Count).ToArray();
        if (shuffle) new Rng(seed * 1_000_003 + epoch).Shuffle(order);
        return order;
    }
}
