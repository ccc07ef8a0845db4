// The per-sample table as a Microsoft.Data.Analysis DataFrame (one row per sample, columns as in EvalSample),
// written as CSV (DataFrame.SaveCsv) and Parquet (Parquet.Net, one row group, a column per DataFrame column).
// Both are written to memory, then atomically to disk.
using Microsoft.Data.Analysis;
using Parquet;
using Parquet.Schema;
using PostTrain.Eval.Runner;
using PostTrain.Training.Infra;

namespace PostTrain.Eval.Reports;

public static class SampleTable
{
    public static DataFrame ToDataFrame(IReadOnlyList<EvalSample> samples) => new(
        new StringDataFrameColumn("model", samples.Select(s => s.Model)),
        new StringDataFrameColumn("task", samples.Select(s => s.Task)),
        new StringDataFrameColumn("mode", samples.Select(s => s.Mode)),
        new Int32DataFrameColumn("problem", samples.Select(s => s.Problem)),
        new Int32DataFrameColumn("sample", samples.Select(s => s.Sample)),
        new StringDataFrameColumn("category", samples.Select(s => s.Category)),
        new StringDataFrameColumn("prompt", samples.Select(s => s.Prompt)),
        new StringDataFrameColumn("completion", samples.Select(s => s.Completion)),
        new StringDataFrameColumn("answer", samples.Select(s => s.Answer)),
        new DoubleDataFrameColumn("reward", samples.Select(s => s.Reward)),
        new BooleanDataFrameColumn("correct", samples.Select(s => s.Correct)),
        new StringDataFrameColumn("reason", samples.Select(s => s.Reason)),
        new Int32DataFrameColumn("prompt_tokens", samples.Select(s => s.PromptTokens)),
        new Int32DataFrameColumn("completion_tokens", samples.Select(s => s.CompletionTokens)),
        new StringDataFrameColumn("finish_reason", samples.Select(s => s.FinishReason)));

    public static void WriteCsv(DataFrame df, string path)
    {
        using var ms = new MemoryStream();
        DataFrame.SaveCsv(df, ms);
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    public static void WriteParquet(DataFrame df, string path)
    {
        using var ms = new MemoryStream();
        WriteParquetAsync(df, ms).GetAwaiter().GetResult();
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    private static async Task WriteParquetAsync(DataFrame df, Stream stream)
    {
        var fields = df.Columns.Select(col => col switch
        {
            StringDataFrameColumn => (DataField)new DataField<string>(col.Name),
            Int32DataFrameColumn => new DataField<int>(col.Name),
            DoubleDataFrameColumn => new DataField<double?>(col.Name),
            BooleanDataFrameColumn => new DataField<bool>(col.Name),
            _ => throw new NotSupportedException($"column {col.Name}: type {col.DataType} has no Parquet mapping here"),
        }).ToList();
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields.Cast<Field>().ToArray()), stream);
        using var group = writer.CreateRowGroup();
        for (int c = 0; c < fields.Count; c++)
        {
            var col = df.Columns[c];
            switch (col)
            {
                case StringDataFrameColumn s:
                    await group.WriteAsync(fields[c], Enumerable.Range(0, (int)s.Length).Select(i => s[i]).ToArray(), null);
                    break;
                case Int32DataFrameColumn n:
                    await group.WriteAsync<int>(fields[c], n.Select(v => v ?? throw new InvalidDataException($"column {col.Name} has a null")).ToArray());
                    break;
                case DoubleDataFrameColumn d:
                    await group.WriteAsync<double>(fields[c], d.ToArray());
                    break;
                case BooleanDataFrameColumn b:
                    await group.WriteAsync<bool>(fields[c], b.Select(v => v ?? false).ToArray());
                    break;
            }
        }
        group.CompleteValidate();
    }
}
