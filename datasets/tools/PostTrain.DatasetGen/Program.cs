// Writes datasets/{arithmetic,countdown,preferences,preferences-hard,code}/{train,test}.parquet from the seeded generators.
// Usage: dotnet run --project datasets/tools/PostTrain.DatasetGen -- [datasets-dir (default: datasets)]
//        dotnet run --project datasets/tools/PostTrain.DatasetGen -- countdown <dir> <min numbers> <max numbers> <max number>
//        (a Countdown train/test pair of another shape, same seeds, for experiments)
//        dotnet run --project datasets/tools/PostTrain.DatasetGen -- code [datasets-dir]   (only datasets/code/*.parquet)
//        dotnet run --project datasets/tools/PostTrain.DatasetGen -- code-pretrain <out.jsonl> [count] [wide|wide=CAP] [drills=SHARE]
//        (JSONL {prompt, completion} of training-split functions only, for pre-training a code base model; wide: the
//        families' wide constants, so each of their functions appears once to a few times; wide=999: the same with
//        constants and drill numbers at most 999, 1 to 3 digits equally likely; drills=0.3: that share of the rows are
//        copy drills (CopyDrills) between the tasks)
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
    // <out.jsonl> [count] [wide|wide=CAP] [drills=SHARE]
    int count = 60000;
    bool wide = false;
    int? wideCap = null;
    double drills = 0;
    bool ok = args.Length >= 2;
    for (int i = 2; ok && i < args.Length; i++)
    {
        if (i == 2 && int.TryParse(args[i], out var n) && n > 0) count = n;
        else if (args[i] == "wide" && !wide) wide = true;
        else if (args[i].StartsWith("wide=", StringComparison.Ordinal) && !wide && int.TryParse(args[i]["wide=".Length..], out var cap) && cap >= 9)
            (wide, wideCap) = (true, cap);
        else if (args[i].StartsWith("drills=", StringComparison.Ordinal)
                 && double.TryParse(args[i]["drills=".Length..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d)
                 && d is >= 0 and <= 0.9) drills = d;
        else ok = false;
    }
    if (!ok)
    {
        Console.Error.WriteLine("usage: code-pretrain <out.jsonl> [count] [wide|wide=CAP (>= 9)] [drills=SHARE in 0..0.9]");
        Environment.Exit(2);
    }
    var rows = DatasetFiles.WriteCodePretrain(args[1], count, wide, drills, wideCap);
    Console.WriteLine($"{args[1]}: {rows} rows");
    return;
}
var dir = args.Length > 0 ? args[0] : "datasets";
foreach (var path in DatasetFiles.WriteAll(dir))
    Console.WriteLine($"{path}: {new FileInfo(path).Length / 1024.0:F1} KiB");
