// Entry point of `posttrain`; the verbs live in CliApp.
using PostTrain.Cli;

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // first Ctrl+C: stop cleanly at the next step; a second one kills the process
    if (cts.IsCancellationRequested) Environment.Exit(130);
    cts.Cancel();
};
return await CliApp.RunAsync(args, Console.Out, Console.Error, cts.Token);
