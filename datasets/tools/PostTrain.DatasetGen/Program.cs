// Writes datasets/{arithmetic,countdown,preferences}/{train,test}.parquet from the seeded generators.
// Usage: dotnet run --project datasets/tools/PostTrain.DatasetGen -- [datasets-dir (default: datasets)]
using PostTrain.Data.Generators;

var dir = args.Length > 0 ? args[0] : "datasets";
foreach (var path in DatasetFiles.WriteAll(dir))
    Console.WriteLine($"{path}: {new FileInfo(path).Length / 1024.0:F1} KiB");
