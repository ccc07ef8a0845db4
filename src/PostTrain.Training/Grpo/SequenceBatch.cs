// Prompt + completion rows as one right-padded batch for the training forward, and the log-probabilities the
// policy gives each completion token. Row i is prompt_i ++ completion_i ++ padding (id 0, masked out by the key
// padding mask); completion token j of row i sits at column P_i + j and is predicted by the logits at column
// P_i + j - 1. Right padding keeps each row's positions 0.. from its first token, as in generation.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public sealed class SequenceBatch : IDisposable
{
    public Tensor Ids { get; }          // (n, L) int64
    public Tensor KeyPadding { get; }   // (n, L) bool, true = real token
    public Tensor Predictor { get; }    // (n, C) int64: the column whose logits predict completion token j
    public Tensor Targets { get; }      // (n, C) int64: completion token j (0 past the end)
    public long Rows { get; }
    public int CompletionColumns { get; }
    /// <summary>Real (unpadded) tokens in the batch: prompts plus completions.</summary>
    public long RealTokens { get; }

    /// <param name="completionColumns">C: at least the longest completion (usually max_completion_length).</param>
    /// <summary>Columns per row (L).</summary>
    public int Columns { get; }

    public SequenceBatch(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions, int completionColumns, Device? device = null)
    {
        if (prompts.Count != completions.Count) throw new ArgumentException($"{prompts.Count} prompts for {completions.Count} completions");
        Rows = prompts.Count;
        CompletionColumns = completionColumns;
        int L = Enumerable.Range(0, prompts.Count).Max(i => prompts[i].Length + completions[i].Length);
        int C = completionColumns;
        Columns = L;
        var ids = new long[Rows * L];
        var valid = new bool[Rows * L];
        var pred = new long[Rows * C];
        var targets = new long[Rows * C];
        for (int i = 0; i < Rows; i++)
        {
            var (p, c) = (prompts[i], completions[i]);
            if (p.Length == 0) throw new ArgumentException($"row {i}: empty prompt");
            if (c.Length > C) throw new ArgumentException($"row {i}: completion of {c.Length} tokens, more than {C} columns");
            for (int j = 0; j < p.Length; j++) { ids[i * L + j] = p[j]; valid[i * L + j] = true; }
            for (int j = 0; j < c.Length; j++) { ids[i * L + p.Length + j] = c[j]; valid[i * L + p.Length + j] = true; }
            for (int j = 0; j < C; j++)
            {
                pred[i * C + j] = j < c.Length ? p.Length + j - 1 : p.Length - 1;
                targets[i * C + j] = j < c.Length ? c[j] : 0;
            }
            RealTokens += p.Length + c.Length;
        }
        Ids = tensor(ids, [Rows, L], device: device);
        KeyPadding = tensor(valid, [Rows, L], device: device);
        Predictor = tensor(pred, [Rows, C], device: device);
        Targets = tensor(targets, [Rows, C], device: device);
    }

    /// <summary>The rows' recorded routing as replay tensors, one (n * L, k) int64 per MoE layer in the batch's flattened
    /// token order (RecordedRouting.Tensors).</summary>
    public Tensor[] RoutingTensors(IReadOnlyList<RoutingTrace?> traces, int moeLayers, int k, Device device) =>
        RecordedRouting.Tensors(traces, (int)Rows, Columns, moeLayers, k, device);

    /// <summary>One forward of <paramref name="model"/>: log softmax(logits / temperature) at each completion token
    /// (n, C) fp32, and when asked the entropy of that distribution (n, C). Padding columns hold junk: mask them.
    /// The head runs only at the completion positions, in row chunks (ChunkedTokenLogProbs): no (n, L, V) logits.</summary>
    public (Tensor LogProbs, Tensor? Entropy) LogProbs(DeepSeekForCausalLM model, double temperature, bool withEntropy)
    {
        using var scope = NewDisposeScope();
        var normed = model.NormedHidden(Ids, mask: new AttentionMask(KeyPadding));                // (n, L, H)
        long H = normed.shape[2];
        var picked = normed.gather(1, Predictor.unsqueeze(2).expand(Rows, CompletionColumns, H));  // (n, C, H)
        var (lp, entropy) = ChunkedTokenLogProbs.Compute(picked.reshape(-1, H), model.HeadWeight, Targets.reshape(-1),
            temperature, withEntropy);                                                              // (n*C)
        return (lp.view(Rows, CompletionColumns).MoveToOuterDisposeScope(),
            entropy?.view(Rows, CompletionColumns).MoveToOuterDisposeScope());
    }

    public void Dispose()
    {
        Ids.Dispose(); KeyPadding.Dispose(); Predictor.Dispose(); Targets.Dispose();
    }
}
