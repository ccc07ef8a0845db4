// Dropout on a LoRA adapter's input with an explicit mask: each element is zeroed with probability p (mask drawn as
// rand < p from the default generator) and the rest scaled by 1 / (1 - p). The mask is a bool tensor (what autograd
// keeps for backward, as native dropout keeps its own). Inside a recompute region the mask goes on the region's tape, so
// the replay in backward applies the same mask without drawing again.
using PostTrain.Core.Recompute;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

internal static class LoraDropout
{
    /// <summary>x (..., in) with dropout p applied; x itself when p is 0.</summary>
    public static Tensor Apply(Tensor x, double p)
    {
        if (p <= 0) return x;
        var drop = RecomputeTape.Current is { } tape ? tape.Keep(() => Draw(x, p)) : Draw(x, p);   // (..., in) bool
        return x.masked_fill(drop, 0) * (1.0 / (1.0 - p));
    }

    private static Tensor Draw(Tensor x, double p) => rand_like(x).lt(p);
}
