// The 2-layer MLP both FP8-vs-BF16 training tests use: gelu(x W1^T + b1) W2^T + b2 with every GEMM through
// LinearOps at the given precision, weights drawn from the test's Rng (1/sqrt(fan-in) scale), AdamW without weight
// decay, one step per batch; returns every step's loss.
using PostTrain.Core.Precision;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;
using P = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Tests.Precision;

internal static class TwoLayerTrainer
{
    /// <param name="xs">(steps, batch, in) inputs.</param>
    /// <param name="loss">The loss of step s's outputs (batch, out).</param>
    public static List<double> Train(Rng rng, Tensor xs, int hidden, int outputs, double lr, P p, Func<Tensor, int, Tensor> loss)
    {
        long inputs = xs.shape[2];
        var w1 = nn.Parameter(rng.Randn(hidden, inputs) / Math.Sqrt(inputs));
        var b1 = nn.Parameter(zeros(hidden));
        var w2 = nn.Parameter(rng.Randn(outputs, hidden) / Math.Sqrt(hidden));
        var b2 = nn.Parameter(zeros(outputs));
        using var opt = new AdamW([w1, b1, w2, b2], lr: lr, weightDecay: 0);
        var losses = new List<double>();
        for (int s = 0; s < xs.shape[0]; s++)
        {
            using var scope = NewDisposeScope();
            var h = nn.functional.gelu(LinearOps.Linear(xs[s], w1, b1, p));    // (B, hidden)
            var l = loss(LinearOps.Linear(h, w2, b2, p), s);                    // outputs (B, out)
            l.backward();
            opt.Step();
            opt.ZeroGrad();
            losses.Add(l.item<float>());
        }
        return losses;
    }
}
