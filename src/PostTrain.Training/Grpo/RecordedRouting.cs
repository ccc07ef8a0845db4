// The experts recorded while sampling (RoutingTrace per completion), laid out for a training forward, and how often the
// training forward's own choice differs from them. Shared by the plain policy update (SequenceBatch) and the fast one
// (GrpoFastPath, whose rows are padded to a length bucket and whose micro-batches may end in empty rows).
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public static class RecordedRouting
{
    /// <summary>One (rows * columns, k) int64 tensor per MoE layer: row i's recorded experts at its token positions
    /// (row-major, as the batch's right-padded (rows, columns) ids flatten), -1 where nothing was recorded (the last
    /// completion token, padding, rows past <paramref name="traces"/>' count, rows without a trace).</summary>
    public static Tensor[] Tensors(IReadOnlyList<RoutingTrace?> traces, int rows, int columns, int moeLayers, int k, Device device)
    {
        if (traces.Count > rows) throw new ArgumentException($"{traces.Count} routing traces for {rows} rows");
        var result = new Tensor[moeLayers];
        for (int l = 0; l < moeLayers; l++)
        {
            var v = new long[(long)rows * columns * k];
            Array.Fill(v, -1L);
            for (int i = 0; i < traces.Count; i++)
            {
                if (traces[i] is not { } t) continue;
                if (t.MoeLayers != moeLayers || t.TopK != k)
                    throw new ArgumentException($"row {i}: routing trace of {t.MoeLayers} layers x {t.TopK} experts, the model has {moeLayers} x {k}");
                int n = Math.Min(t.Positions, columns);
                for (int pos = 0; pos < n; pos++)
                    for (int j = 0; j < k; j++) v[((long)i * columns + pos) * k + j] = t.Expert(l, pos, j);
            }
            result[l] = tensor(v, [(long)rows * columns, k], device: device);
        }
        return result;
    }

    /// <summary>For one training forward: each router keeps its own choice (keepChoice) and, with
    /// <paramref name="replay"/>, uses the recorded experts (routing replay); disposing restores the routers and drops
    /// their kept choices.</summary>
    public static IDisposable Route(IReadOnlyList<Router> routers, IReadOnlyList<Tensor>? replay, bool keepChoice)
    {
        for (int l = 0; l < routers.Count; l++)
        {
            routers[l].KeepLastChoice = keepChoice;
            routers[l].ReplayExperts = replay?[l];
        }
        return new PostTrain.Core.Runtime.OnDispose(() =>
        {
            foreach (var r in routers) { r.ReplayExperts = null; r.ClearLastChoice(); }
        });
    }

    /// <summary>(tokens whose own expert set differs from the recorded one, tokens with a record) as a float64 (2) tensor
    /// on the device: own and recorded are (N, k) int64, a recorded row of -1 has no record.</summary>
    public static Tensor Disagreement(Tensor own, Tensor recorded)
    {
        using var scope = NewDisposeScope();
        var has = recorded.select(1, 0).ge(0);                                      // (N)
        var differs = own.sort(-1).Values.ne(recorded.sort(-1).Values).sum(-1).gt(0).logical_and(has);
        return stack([differs.sum(), has.sum()]).to(ScalarType.Float64).MoveToOuterDisposeScope();
    }
}
