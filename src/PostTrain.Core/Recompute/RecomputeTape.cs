// What a recompute region's first pass hands to its replay in backward, so that the replay computes exactly the same
// function: tensors drawn or decided in the first pass (LoRA dropout masks, MoE expert choices) are kept in order and
// given back in that order by the replay (Keep), without drawing or deciding again: the global RNG is not touched
// twice (TorchSharp 0.107 exposes no CUDA generator state to rewind), and routing cannot pick other experts in the
// replay (GRPO's routing replay is switched off again before backward). Side outputs: tensors the region makes that the
// loss uses besides its result (the MoE sequence-wise balance loss) become outputs of the region's autograd node, handed
// to their owner after the first pass. While a region runs (first pass or replay) its tape is Current on this thread;
// MoE layers do not count expert loads while a tape replays (the first pass counted them).
using static TorchSharp.torch;

namespace PostTrain.Core.Recompute;

internal sealed class RecomputeTape : IDisposable
{
    [ThreadStatic]
    private static RecomputeTape? current;

    private readonly List<Tensor> kept;
    private readonly List<Tensor> side = [];
    private readonly List<Action<Tensor>> deliver = [];
    private int next;

    private RecomputeTape(bool replaying, List<Tensor> kept)
    {
        Replaying = replaying;
        this.kept = kept;
    }

    /// <summary>The tape of the region running on this thread, or null outside regions.</summary>
    public static RecomputeTape? Current => current;

    /// <summary>True in backward's replay, false in the first pass.</summary>
    public bool Replaying { get; }

    public static RecomputeTape FirstPass() => new(false, []);

    /// <summary>A replay giving back <paramref name="kept"/> (the first pass's Kept, in order).</summary>
    public static RecomputeTape Replay(List<Tensor> kept) => new(true, kept);

    /// <summary>The tensors kept by the first pass, in order (references owned by the tape).</summary>
    public IReadOnlyList<Tensor> Kept => kept;

    /// <summary>The side outputs of this pass, in order (references owned by the tape).</summary>
    public IReadOnlyList<Tensor> SideOutputs => side;

    /// <summary>First pass: decide() and keep the result. Replay: the tensor the first pass kept at this position
    /// (decide is not called).</summary>
    public Tensor Keep(Func<Tensor> decide)
    {
        if (!Replaying)
        {
            var t = decide();
            kept.Add(t.alias().DetachFromDisposeScope());
            return t;
        }
        if (next >= kept.Count)
            throw new InvalidOperationException($"recompute: the replay asked for kept tensor {next + 1}, the first pass kept {kept.Count}: " +
                "the region did not run the same code twice");
        return kept[next++].alias();
    }

    /// <summary>A tensor the loss uses besides the region's result; after the first pass the region's node output for
    /// it goes to <paramref name="handOver"/> (not called in the replay).</summary>
    public void SideOutput(Tensor value, Action<Tensor> handOver)
    {
        side.Add(value.alias().DetachFromDisposeScope());
        deliver.Add(handOver);
    }

    /// <summary>Hands the node's outputs for the side outputs to their owners (first pass only).</summary>
    public void Deliver(IReadOnlyList<Tensor> nodeOutputs)
    {
        for (int i = 0; i < deliver.Count; i++) deliver[i](nodeOutputs[i]);
    }

    /// <summary>Makes this tape Current on this thread until the returned scope is disposed.</summary>
    public IDisposable Enter()
    {
        var previous = current;
        current = this;
        return new PostTrain.Core.Runtime.OnDispose(() => current = previous);
    }

    public void Dispose()
    {
        foreach (var t in kept) t.Dispose();
        foreach (var t in side) t.Dispose();
    }
}
