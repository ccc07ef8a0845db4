// Runs a static-shape decode step (StaticDecodeStep, MtpSpeculativeStep) eagerly or as a CUDA graph. With graphs the
// first call after each (re)shape runs the step eagerly (warm-up: kernels load, lazily made weights exist), the next
// captures it and replays the graph, every later call replays. A capture that fails (an op that synchronises, an old
// driver) falls back to eager steps and records why (GenerationStats.GraphFallback). With graphs the device work runs
// on a side stream (captures need a non-default one) until Dispose.
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal sealed class CapturedStep : IDisposable
{
    private readonly Action body;
    private readonly GenerationStats stats;
    private readonly string prefix;
    private readonly IDisposable? side;
    private bool graphs, warm;
    private CudaGraph? graph;

    /// <summary>prefix names the step in GenerationStats.DecodeMode ("" plain, "mtp-" speculative): prefix + "static"
    /// or prefix + "cuda-graph".</summary>
    public CapturedStep(Action body, bool graphs, Device device, GenerationStats stats, string prefix)
    {
        this.body = body;
        this.graphs = graphs;
        this.stats = stats;
        this.prefix = prefix;
        side = graphs ? CudaGraph.EnterSideStream(device) : null;
        stats.DecodeMode = prefix + (graphs ? "cuda-graph" : "static");
    }

    /// <summary>One step: eager, captured-then-replayed or replayed.</summary>
    public void Run()
    {
        if (graph is not null) { graph.Replay(); return; }
        if (!graphs || !warm)
        {
            body();
            warm = true;
            return;
        }
        try
        {
            graph = CudaGraph.Capture(body);
            stats.GraphCaptures++;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            stats.GraphFallback = e.Message;
            stats.DecodeMode = prefix + "static";
            graphs = false;
        }
        if (graph is not null) graph.Replay();
        else body();
    }

    /// <summary>The step's shapes changed (rows compacted): the next call warms up and captures again.</summary>
    public void Reshaped()
    {
        graph?.Dispose();
        graph = null;
        warm = false;
    }

    public void Dispose()
    {
        graph?.Dispose();
        graph = null;
        side?.Dispose();
    }
}
