// Prompts of different lengths as one left-padded batch: ids (B, P) (pad id 0, masked out), positions (B, P) counting
// from 0 at each row's first real token, validity (B, P) and lengths (B). Left padding lets every row append its
// new tokens at the same cache column.
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal sealed class PromptBatch : IDisposable
{
    public Tensor Ids { get; }        // (B, P) int64
    public Tensor Positions { get; }  // (B, P) int64
    public Tensor Valid { get; }      // (B, P) bool
    public Tensor Lengths { get; }    // (B) int64
    public int MaxLength { get; }
    public long Batch { get; }

    public PromptBatch(IReadOnlyList<int[]> prompts, Device device)
    {
        Batch = prompts.Count;
        MaxLength = prompts.Max(p => p.Length);
        int P = MaxLength;
        var ids = new long[Batch * P];
        var pos = new long[Batch * P];
        var valid = new bool[Batch * P];
        var lens = new long[Batch];
        for (int b = 0; b < Batch; b++)
        {
            var p = prompts[b];
            int pad = P - p.Length;
            lens[b] = p.Length;
            for (int j = 0; j < p.Length; j++)
            {
                ids[b * P + pad + j] = p[j];
                pos[b * P + pad + j] = j;
                valid[b * P + pad + j] = true;
            }
        }
        Ids = tensor(ids, [Batch, P], device: device).DetachFromDisposeScope();
        Positions = tensor(pos, [Batch, P], device: device).DetachFromDisposeScope();
        Valid = tensor(valid, [Batch, P], device: device).DetachFromDisposeScope();
        Lengths = tensor(lens, device: device).DetachFromDisposeScope();
    }

    public void Dispose()
    {
        Ids.Dispose(); Positions.Dispose(); Valid.Dispose(); Lengths.Dispose();
    }
}
