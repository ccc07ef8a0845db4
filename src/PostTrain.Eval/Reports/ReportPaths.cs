// Where an eval's reports are: report.html, report.md, samples.parquet, samples.csv (and samples.jsonl, the log).
namespace PostTrain.Eval.Reports;

public sealed record ReportPaths(string Html, string Markdown, string Parquet, string Csv, string SamplesJsonl);
