// Chunked token log-probabilities (GRPO's log pi(token)) against the plain path: full logits, / temperature,
// log_softmax, gather; values, entropies and the gradients of h and of the head weight, for chunks that do not divide
// the rows, temperature 1 and 0.7, in float64 (the plain math, exactly) and in bfloat16 (rounding of the head GEMMs).
using PostTrain.Core.Model;
using PostTrain.Core.Tests.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.FastPath;

public sealed class ChunkedTokenLogProbsTests
{
    [Theory]
    [InlineData(5, 1.0)]
    [InlineData(64, 0.7)]
    [InlineData(3, 0.7)]
    public void EqualsFullLogitsLogSoftmaxInValuesEntropiesAndGradients(long chunk, double temperature)
    {
        var rng = new Rng(91);
        var h0 = rng.Randn(13, 16).to(ScalarType.Float64);
        var w0 = rng.Randn(40, 16).to(ScalarType.Float64) * 0.3;
        var targets = randint(0, 40, [13], generator: new Generator(6));
        var upstream = rng.Randn(13).to(ScalarType.Float64);        // a weighted loss, as GRPO's per-token weights

        var h1 = h0.clone().requires_grad_(true);
        var w1 = w0.clone().requires_grad_(true);
        var z = nn.functional.linear(h1, w1).to(ScalarType.Float32) / temperature;
        var logp = z.log_softmax(-1);
        var lpRef = logp.gather(1, targets.unsqueeze(1)).squeeze(1);
        var entRef = -(logp.exp() * logp).sum(-1);
        (lpRef * upstream.to(ScalarType.Float32)).sum().backward();

        var h2 = h0.clone().requires_grad_(true);
        var w2 = w0.clone().requires_grad_(true);
        var (lp, ent) = ChunkedTokenLogProbs.Compute(h2, w2, targets, temperature, withEntropy: true, chunkRows: chunk);
        (lp * upstream.to(ScalarType.Float32)).sum().backward();

        Assert.True(lp.allclose(lpRef.detach(), rtol: 1e-5, atol: 1e-5), "log-probs differ");
        Assert.True(ent!.allclose(entRef.detach(), rtol: 1e-5, atol: 1e-5), "entropies differ");
        Assert.False(ent.requires_grad);
        Assert.True((h1.grad! - h2.grad!).abs().max().item<double>() < 1e-5, "dh differs");
        Assert.True((w1.grad! - w2.grad!).abs().max().item<double>() < 1e-5, "dW differs");
    }

    [Fact]
    public void Bf16ActivationsStayWithinRoundingOfThePlainPath()
    {
        var rng = new Rng(92);
        var h0 = rng.Randn(20, 32).to(ScalarType.BFloat16);
        var w0 = rng.Randn(50, 32) * 0.2;                                // fp32 master weight, cast per use
        var targets = randint(0, 50, [20], generator: new Generator(7));

        var h1 = h0.clone().requires_grad_(true);
        var w1 = w0.clone().requires_grad_(true);
        var lpRef = nn.functional.linear(h1, w1.to(ScalarType.BFloat16)).to(ScalarType.Float32).log_softmax(-1).gather(1, targets.unsqueeze(1)).squeeze(1);
        lpRef.sum().backward();

        var h2 = h0.clone().requires_grad_(true);
        var w2 = w0.clone().requires_grad_(true);
        var (lp, ent) = ChunkedTokenLogProbs.Compute(h2, w2, targets, 1.0, withEntropy: false, chunkRows: 7);
        lp.sum().backward();

        Assert.Null(ent);
        Assert.True(lp.allclose(lpRef.detach(), rtol: 1e-4, atol: 1e-4));
        Assert.Equal(ScalarType.BFloat16, h2.grad!.dtype);
        Assert.Equal(ScalarType.Float32, w2.grad!.dtype);
        double scale = w1.grad!.abs().max().item<float>();
        Assert.True((w1.grad! - w2.grad!).abs().max().item<float>() <= 2e-2 * scale, "dW beyond bf16 rounding");
        Assert.True((h1.grad!.to(ScalarType.Float32) - h2.grad!.to(ScalarType.Float32)).abs().max().item<float>()
            <= 2e-2 * h1.grad!.to(ScalarType.Float32).abs().max().item<float>(), "dh beyond bf16 rounding");
    }
}
