// Entry point of `posttrain`; the verbs live in CliApp.
using PostTrain.Cli;

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // first Ctrl+C: stop cleanly at the next step; a second one kills the process
    if (cts.IsCancellationRequested) Environment.Exit(130);
    cts.Cancel();
};
// a distributed run's ranks other than 0 keep quiet on stdout (rank 0 prints the config and progress); errors stay
var stdout = PostTrain.Core.Distributed.DistEnv.FromEnvironment().Rank == 0 ? Console.Out : TextWriter.Null;
int code = await CliApp.RunAsync(args, stdout, Console.Error, cts.Token);
return PostTrain.Core.Distributed.Dist.Exit(code);   // one failing rank of a distributed run ends them all
