// The chunked LM head + cross-entropy against the plain head (full logits) + Losses.CrossEntropySum: the loss sum and
// the gradients of the hidden states and of the head weight, with ignored labels and chunks that do not divide the
// rows; and padded-v attention against plain attention (outputs and gradients).
using PostTrain.Core.Model;
using PostTrain.Core.Tests.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.FastPath;

public sealed class ChunkedHeadLossTests
{
    [Theory]
    [InlineData(7, false)]     // 3 chunks, the last one short
    [InlineData(64, false)]    // one chunk
    [InlineData(7, true)]      // the fused softmax cross-entropy backend (the reference kernels here)
    public void EqualsPlainHeadAndCrossEntropyInValueAndGradients(long chunk, bool fused)
    {
        var rng = new Rng(81);
        var h0 = rng.Randn(2, 9, 16).to(ScalarType.Float64);
        var w0 = rng.Randn(40, 16).to(ScalarType.Float64) * 0.3;
        var labels = randint(0, 40, [2, 9], generator: new Generator(5));
        labels[0, 3] = tensor(Losses.Ignore);
        labels[1, 8] = tensor(Losses.Ignore);

        var h1 = h0.clone().requires_grad_(true);
        var w1 = w0.clone().requires_grad_(true);
        var (refSum, count) = Losses.CrossEntropySum(nn.functional.linear(h1, w1), labels);
        (refSum / count).backward();

        var h2 = h0.clone().requires_grad_(true);
        var w2 = w0.clone().requires_grad_(true);
        var sum = ChunkedHeadLoss.Sum(h2, w2, labels, chunk, fused ? PostTrain.Core.Kernels.ReferenceFusedKernels.Instance : null);
        (sum / count).backward();

        Assert.Equal(16L, count);
        Assert.Equal(refSum.item<float>(), sum.item<float>(), 4);
        Assert.True((h1.grad! - h2.grad!).abs().max().item<double>() < 1e-6, "dh differs");
        Assert.True((w1.grad! - w2.grad!).abs().max().item<double>() < 1e-6, "dW differs");
        Assert.True(h2.grad![0, 3].abs().max().item<double>() == 0, "an ignored row got a gradient");
    }

    [Fact]
    public void PaddedValueAttentionEqualsPlainInOutputAndGradients()
    {
        var cfg = BuiltinModels.Micro();
        random.manual_seed(3);
        var m = new DeepSeekForCausalLM(cfg);
        m.InitWeights(0.05, 3);
        var att = m.Model.Layers[0].Attention;
        var x = new Rng(9).Randn(2, 6, cfg.HiddenSize);
        var (cos, sin) = m.Rotary.Angles(arange(6).unsqueeze(0).expand(2, 6));

        var x1 = x.clone().requires_grad_(true);
        var y1 = att.Forward(x1, cos, sin, m.Rotary, null);
        y1.pow(2).sum().backward();
        var g1 = m.parameters().Select(p => p.grad?.clone()).ToList();
        m.zero_grad();

        att.PadValueToQkDim = true;
        var x2 = x.clone().requires_grad_(true);
        var y2 = att.Forward(x2, cos, sin, m.Rotary, null);
        y2.pow(2).sum().backward();
        var g2 = m.parameters().Select(p => p.grad?.clone()).ToList();

        Assert.True((y1 - y2).abs().max().item<float>() < 1e-6);
        Assert.True((x1.grad! - x2.grad!).abs().max().item<float>() < 1e-6);
        for (int i = 0; i < g1.Count; i++)
            if (g1[i] is not null) Assert.True((g1[i]! - g2[i]!).abs().max().item<float>() < 1e-6, $"parameter {i} gradient differs");
    }
}
