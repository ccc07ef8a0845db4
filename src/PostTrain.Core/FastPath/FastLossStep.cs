// The machinery every fast training step shares (SFT's FastTrainStep, the reward model's and GRPO's fast steps): a
// loss function over the caller's static-shape device buffers, run with its backward and a device-side optimizer
// update, each distinct body captured once as a CUDA graph after WarmupSteps eager runs and replayed after that; off
// CUDA, without the native library, or after a failed capture the same bodies run eagerly (identical numbers).
// Per call the host only copies inputs into the buffers (copyInputs), writes the learning rate into a device scalar and
// launches; nothing in a body reads the device from the host.
//   Step(key, ...)        one body: loss -> backward -> [clip, guarded fused AdamW] (SFT, RM); the gradients are
//                         released (None) before each eager or captured run, so backward writes them (no zeroing, no
//                         add into a zeroed copy) and, in the graph, they share memory with the forward's activations;
//   Accumulate(key, ...)  one body per key (a static shape, e.g. a GRPO length bucket): loss -> backward, the loss
//                         added to a device sum; gradients accumulate in place in their fixed tensors;
//   Apply(lr)             one body: [clip, guarded fused AdamW, zeroed gradients] over the accumulated loss.
// A key's body is the one given at its first call (the loss function returns a 0-dim tensor and must read only the
// static buffers: later calls replay it). The loss and gradient norm come back as device tensors, read after the launch.
using PostTrain.Core.Precision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Core.FastPath;

public sealed class FastLossStep : IDisposable
{
    private const string ApplyKey = "\0apply";

    private sealed class Body(string kind, Action run)
    {
        public string Kind { get; } = kind;
        public Action Run { get; } = run;
        public Generation.CudaGraph? Graph { get; set; }
        public int EagerRuns { get; set; }
    }

    private readonly Parameter[] parameters;
    private readonly AdamW optimizer;
    private readonly FastTrainStepOptions options;
    private readonly Tensor lossOut, normOut, lossSum;
    private readonly Dictionary<string, Body> bodies = new(StringComparer.Ordinal);
    private bool graphs;
    private string? style;   // "Step" or "Accumulate": one instance runs one of the two (their gradients differ)

    public Device Device { get; }
    public FastTrainStepOptions Options => options;
    /// <summary>"cuda-graph", "cuda-graph (after warm-up)", "eager (why)": how the steps run now.</summary>
    public string Description { get; private set; }
    /// <summary>Bodies captured as CUDA graphs so far.</summary>
    public int CapturedGraphs => bodies.Values.Count(b => b.Graph is not null);

    private FastLossStep(IEnumerable<Parameter> parameters, AdamW optimizer, Device device, FastTrainStepOptions options, bool graphs, string description)
    {
        this.parameters = parameters.ToArray();
        this.optimizer = optimizer;
        this.options = options;
        this.graphs = graphs;
        Device = device;
        Description = description;
        lossOut = zeros(1, dtype: ScalarType.Float32, device: device).squeeze().DetachFromDisposeScope();
        normOut = zeros(1, dtype: ScalarType.Float32, device: device).squeeze().DetachFromDisposeScope();
        lossSum = zeros(1, dtype: ScalarType.Float32, device: device).squeeze().DetachFromDisposeScope();
    }

    /// <summary>The step over <paramref name="parameters"/> (the trained ones: clipped and stepped) on
    /// <paramref name="device"/>. unsupported: the caller's reason the model cannot take the step (thrown).
    /// uncapturable: the caller's reason the model's step cannot be captured on CUDA (see
    /// <see cref="FastTrainStep.GraphBlocker(DeepSeekForCausalLM)"/>), said before any capture is tried. mode On throws
    /// when CUDA graphs are wanted but unavailable; Auto runs eagerly and says why through log.</summary>
    public static FastLossStep Create(IEnumerable<Parameter> parameters, AdamW optimizer, Device device, FastPathMode mode,
        FastTrainStepOptions? options = null, Action<string>? log = null, string? unsupported = null, string? uncapturable = null)
    {
        options ??= new FastTrainStepOptions();
        unsupported ??= optimizer.Fused ? null : "the optimizer is not fused AdamW (bf16 moments need bf16 parameters)";
        if (unsupported is not null) throw new InvalidOperationException($"fast path: {unsupported}.");
        bool cudaDevice = device.type == DeviceType.CUDA;
        string? noGraph = !options.CudaGraph ? "CUDA graphs turned off"
            : !cudaDevice ? "not on CUDA"
            : uncapturable is not null ? uncapturable
            : !Generation.CudaGraph.IsAvailable(out var reason) ? reason : null;
        if (noGraph is not null && mode == FastPathMode.On && options.CudaGraph)
            throw new InvalidOperationException($"fast_path: on, but the step cannot be captured: {noGraph}.");
        if (noGraph is not null && cudaDevice) log?.Invoke($"fast path: eager steps ({noGraph})");
        return new FastLossStep(parameters, optimizer, device, options, noGraph is null,
            noGraph is null ? "cuda-graph (after warm-up)" : $"eager ({noGraph})");
    }

    /// <summary>One whole training step under <paramref name="key"/>: copyInputs (no grad) fills the static buffers,
    /// the learning rate goes to the device, then loss -> backward -> clip -> guarded fused AdamW -> zeroed gradients.
    /// The returned tensors are copies.</summary>
    public FastStepResult Step(string key, Action copyInputs, Func<Tensor> loss, double lr)
    {
        optimizer.LearningRate = lr;
        using var side = graphs ? Generation.CudaGraph.EnterSideStream(Device) : null;
        using (no_grad()) copyInputs();
        optimizer.UploadLearningRate();
        Run(nameof(Step), key, () =>
        {
            using var scope = NewDisposeScope();
            var l = loss();
            l.backward();
            Update(l.detach(), zeroGradients: false);
        });
        return Result();
    }

    /// <summary>One micro-batch of gradient accumulation under <paramref name="key"/>: copyInputs fills the buffers,
    /// then loss -> backward (gradients add into the existing ones) and the loss is added to the pending sum that
    /// <see cref="Apply"/> guards and reports. A loss function may write side outputs into its own buffers.</summary>
    public void Accumulate(string key, Action copyInputs, Func<Tensor> loss)
    {
        if (key == ApplyKey) throw new ArgumentException("reserved key", nameof(key));
        using var side = graphs ? Generation.CudaGraph.EnterSideStream(Device) : null;
        using (no_grad()) copyInputs();
        Run(nameof(Accumulate), key, () =>
        {
            using var scope = NewDisposeScope();
            var l = loss();
            l.backward();
            using (no_grad()) lossSum.add_(l.detach());
        });
    }

    /// <summary>After <see cref="Accumulate"/> calls: clip, guarded fused AdamW with <paramref name="lr"/>, zeroed
    /// gradients; the loss is the accumulated sum (reset for the next step). The returned tensors are copies.
    /// sumGradients (data parallel): run eagerly between the last backward and the update body, on the steps' stream,
    /// e.g. the all-reduce that sums the gradients over the ranks (it is never captured).</summary>
    public FastStepResult Apply(double lr, Action? sumGradients = null)
    {
        optimizer.LearningRate = lr;
        using var side = graphs ? Generation.CudaGraph.EnterSideStream(Device) : null;
        if (sumGradients is not null)
            using (no_grad()) sumGradients();
        optimizer.UploadLearningRate();
        Run(nameof(Apply), ApplyKey, () =>
        {
            using var scope = NewDisposeScope();
            Update(lossSum, zeroGradients: true);
            using (no_grad()) lossSum.zero_();
        });
        return Result();
    }

    private FastStepResult Result()
    {
        using (no_grad())
            return new FastStepResult(lossOut.clone().DetachFromDisposeScope(), options.MaxGradNorm is null ? null : normOut.clone().DetachFromDisposeScope());
    }

    // eager warm-up, capture, replay; a failed capture turns every later step eager
    private void Run(string kind, string key, Action body)
    {
        string kindStyle = kind == nameof(Step) ? nameof(Step) : nameof(Accumulate);
        style ??= kindStyle;
        if (style != kindStyle)
            throw new InvalidOperationException($"FastLossStep: {kind} after {style}: one fast step runs whole steps or accumulates, not both (make another).");
        if (!bodies.TryGetValue(key, out var b)) bodies[key] = b = new Body(kind, body);   // Apply's key is reserved
        // A whole step's gradients are released before every run that is not a replay: its backward then writes them
        // fresh (what a replay does too), and a captured step allocates them in its pool after the activations it frees.
        if (kind == nameof(Step) && b.Graph is null) ReleaseGradients();
        if (b.Graph is not null) b.Graph.Replay();
        else if (!graphs || b.EagerRuns < options.WarmupSteps)
        {
            b.Run();
            b.EagerRuns++;
        }
        else
        {
            try
            {
                b.Graph = Generation.CudaGraph.Capture(b.Run);
                Description = "cuda-graph";
            }
            catch (Exception e)
            {
                graphs = false;
                Description = $"eager (capture of the {b.Kind} body '{key.TrimStart('\0')}' failed: {Summary(e.Message)})";
            }
            if (b.Graph is not null) b.Graph.Replay();
            else b.Run();
        }
    }

    // An error's first line and, for TorchScript's "The following operation failed ..." preamble, its last line too
    // (where the RuntimeError says what failed).
    private static string Summary(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length == 0) return "";
        return lines.Length == 1 ? lines[0] : $"{lines[0]} ... {lines[^1]}";
    }

    private void ReleaseGradients()
    {
        foreach (var p in parameters)
            if (p.grad is { } g)
            {
                p.grad = null;
                g.Dispose();
            }
    }

    // the step's optimizer half on the device: clip into normOut, skip on a non-finite loss or norm, step, and zero the
    // gradients when they accumulate (Apply; a whole step releases them before its next run instead)
    private void Update(Tensor loss, bool zeroGradients)
    {
        if (options.MaxGradNorm is double max)
            normOut.copy_(OptimizerScripts.ClipGradNorm(parameters.Select(p => p.grad).Where(g => g is not null).ToArray()!, max));
        Tensor? found = null;
        if (options.SkipNonFinite)
        {
            var bad = loss.isfinite().logical_not();
            if (options.MaxGradNorm is not null) bad = bad.logical_or(normOut.isfinite().logical_not());
            found = bad.to(ScalarType.Float32);
        }
        optimizer.FusedStepKernels(found);
        if (zeroGradients) optimizer.ZeroGrad();
        using (no_grad()) lossOut.copy_(loss);
    }

    public void Dispose()
    {
        foreach (var b in bodies.Values) b.Graph?.Dispose();
        bodies.Clear();
        lossOut.Dispose();
        normOut.Dispose();
        lossSum.Dispose();
    }
}
