// Writes datasets/{arithmetic,countdown,preferences,preferences-hard,code}/{train,test}.parquet from the seeded generators.
// Usage: dotnet run --project datasets/tools/PostTrain.DatasetGen -- [datasets-dir (default: datasets)]
//        dotnet run --project datasets/tools/PostTrain.DatasetGen -- countdown <dir> <min numbers> <max numbers> <max number>
//        (a Countdown train/test pair of another shape, same seeds, for experiments)
//        dotnet run --project datasets/tools/PostTrain.DatasetGen -- code [datasets-dir]   (only datasets/code/*.parquet)
//        dotnet run --project datasets/tools/PostTrain.DatasetGen -- code-pretrain <out.jsonl> [count [wide]]
//        (JSONL {prompt, completion} of training-split functions only, for pre-training a code base model; wide: the
//        families' wide constants, so each of their functions appears once to a few times)
using PostTrain.Data.Generators;

if (args.Length == 5 && args[0] == "countdown")
{
    DatasetFiles.WriteCountdown(args[1], new CountdownShape(int.Parse(args[2]), int.Parse(args[3]), int.Parse(args[4])));
    Console.WriteLine($"{args[1]}: train.parquet, test.parquet");
    return;
}
if (args.Length is 1 or 2 && args[0] == "code")
{
    foreach (var path in DatasetFiles.WriteCode(args.Length == 2 ? args[1] : "datasets"))
        Console.WriteLine($"{path}: {new FileInfo(path).Length / 1024.0:F1} KiB");
    return;
}
if (args.Length > 0 && args[0] == "code-pretrain")
{
    if (args.Length is < 2 or > 4 || (args.Length == 4 && args[3] != "wide") || (args.Length >= 3 && !int.TryParse(args[2], out _)))
    {
        Console.Error.WriteLine("usage: code-pretrain <out.jsonl> [count [wide]]");
        Environment.Exit(2);
    }
    var count = DatasetFiles.WriteCodePretrain(args[1], args.Length >= 3 ? int.Parse(args[2]) : 60000, wide: args.Length == 4);
    Console.WriteLine($"{args[1]}: {count} rows");
    return;
}
var dir = args.Length > 0 ? args[0] : "datasets";
foreach (var path in DatasetFiles.WriteAll(dir))
    Console.WriteLine($"{path}: {new FileInfo(path).Length / 1024.0:F1} KiB");
