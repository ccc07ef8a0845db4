// Writes an eval's reports into its output folder, each file atomically: report.html, report.md, samples.parquet and
// samples.csv (the per-sample table of this eval's models, tasks and problems), results.json (headline numbers).
using PostTrain.Eval.Runner;
using PostTrain.Training.Infra;

namespace PostTrain.Eval.Reports;

public static class ReportWriter
{
    public static ReportPaths Write(string outputDir, EvalResult result, string? metricsPath, EvalSettings settings)
    {
        Directory.CreateDirectory(outputDir);
        var paths = new ReportPaths(Path.Combine(outputDir, "report.html"), Path.Combine(outputDir, "report.md"),
            Path.Combine(outputDir, "samples.parquet"), Path.Combine(outputDir, "samples.csv"), Path.Combine(outputDir, SampleLog.FileName));
        var curves = metricsPath is null ? null : TrainingCurves.Read(metricsPath);
        AtomicFile.WriteAllText(paths.Html, HtmlReport.Render(result, settings, curves));
        AtomicFile.WriteAllText(paths.Markdown, MarkdownReport.Render(result, settings));
        var df = SampleTable.ToDataFrame(result.Samples);
        SampleTable.WriteParquet(df, paths.Parquet);
        SampleTable.WriteCsv(df, paths.Csv);
        PostTrain.Eval.Recipe.EvalResultsFile.From(result, settings).Write(outputDir);
        return paths;
    }
}
