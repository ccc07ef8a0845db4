// posttrain-sandbox-worker: runs untrusted programs for PostTrain.Rewards.Sandbox.SandboxPool.
// Started by the host with a cleared environment, cwd = a fresh scratch folder, the GC heap capped
// (DOTNET_GCHeapHardLimit) and, where possible, in a fresh network namespace (unshare). It confines itself
// (WorkerIsolation), warms up for the one language it serves, says hello, then serves programs one at a time
// over the private channel until the host closes it or a program leaves the worker unusable (a test case that
// will not stop: the worker exits).
using PostTrain.Rewards.Sandbox;
using PostTrain.Sandbox.Worker;

var (input, output) = WorkerIsolation.TakeProtocolChannel();
Console.SetOut(TextWriter.Null);
Console.SetError(TextWriter.Null);
Console.SetIn(TextReader.Null);
var heapBytes = long.TryParse(Environment.GetEnvironmentVariable("POSTTRAIN_SANDBOX_HEAP"), out var h) ? h : 256L << 20;
var hostNet = Environment.GetEnvironmentVariable("POSTTRAIN_SANDBOX_HOSTNET");
var language = Environment.GetEnvironmentVariable("POSTTRAIN_SANDBOX_LANGUAGE") ?? "javascript";
// .NET reads the default regex timeout once, on first use: set it before anything touches Regex.
var regexMs = int.TryParse(Environment.GetEnvironmentVariable("POSTTRAIN_SANDBOX_REGEX_MS"), out var r) ? r : 1000;
AppDomain.CurrentDomain.SetData("REGEX_DEFAULT_MATCH_TIMEOUT", TimeSpan.FromMilliseconds(regexMs));

// Warm the code paths untrusted programs use, and load the assemblies they need, before privileges go.
WorkerWarmup.Run(language);
var isolation = WorkerIsolation.ApplyLimits(heapBytes);
var net = WorkerIsolation.NetworkNamespace();
isolation.Add(net is not null && hostNet is not null && net != hostNet ? "netns=private" : "netns=shared");
if (WorkerIsolation.DropPrivileges() is { } dropped) isolation.Add(dropped);

WorkerProtocol.Write(output, new WorkerFrame("hello", "", Isolation: isolation));
while (WorkerProtocol.Read<WorkerRequest>(input) is { } request)
{
    if (request.Language != language || !WorkerSession.Serve(request, output)) break;
}
output.Flush();
Environment.Exit(0);
