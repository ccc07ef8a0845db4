// Turning token sequences into reward-model inputs and scores: right-padded (N, T) ids with a key-padding mask (the
// model reads each sequence's last real token, so padding side does not matter), and no-grad scoring in micro-batches
// for evaluation and the `model` reward.
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Training.RewardModeling;

public static class RewardScoring
{
    /// <summary>ids (N, T) int64 right-padded with <paramref name="padId"/>, keyPadding (N, T) int64 (1 = real token).</summary>
    /// <param name="minLength">Pad to at least this length (data parallel: the whole batch's longest, so every rank
    /// routes as many pad tokens as one process would).</param>
    public static (Tensor Ids, Tensor KeyPadding) Pad(IReadOnlyList<int[]> sequences, int padId, Device device, int minLength = 0)
    {
        int n = sequences.Count, len = Math.Max(minLength, sequences.Max(s => s.Length));
        var ids = new long[n * len];
        var keep = new long[n * len];
        for (int i = 0; i < n; i++)
            for (int t = 0; t < len; t++)
            {
                bool real = t < sequences[i].Length;
                ids[i * len + t] = real ? sequences[i][t] : padId;
                keep[i * len + t] = real ? 1 : 0;
            }
        return (tensor(ids, [n, len], device: device), tensor(keep, [n, len], device: device));
    }

    /// <summary>Scores of every sequence, <paramref name="batchSize"/> sequences per forward, without gradients.
    /// Routing loads seen while scoring are discarded (they must not steer MoE balancing).</summary>
    public static double[] Score(RewardModel model, IReadOnlyList<int[]> sequences, int padId, int batchSize, Device device,
        CancellationToken ct = default)
    {
        var scores = new double[sequences.Count];
        using var _ = no_grad();
        model.eval();
        // similar lengths share a micro-batch, so little compute goes to padding
        var order = Enumerable.Range(0, sequences.Count).OrderBy(i => sequences[i].Length).ToArray();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var chunk = order.Skip(start).Take(batchSize).ToArray();
            var (ids, keep) = Pad(chunk.Select(i => sequences[i]).ToList(), padId, device);
            var r = model.Forward(ids, new AttentionMask(KeyPadding: keep)).cpu().data<float>().ToArray();
            for (int i = 0; i < r.Length; i++) scores[chunk[i]] = r[i];
        }
        foreach (var moe in model.Backbone.MoeLayers()) moe.TakeLoads();
        return scores;
    }
}
